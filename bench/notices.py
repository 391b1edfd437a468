"""One notice to every resident of a node, fanned out into 100,000 inboxes:
`python -m bench.notices [--db sqlite|postgres|both] [--people 100000]`.

For each database, in one run, with the notices service (`python -m services.notices`, a separate process) on a
freshly started nats-server:
  1. the node's residents (`--people` rows of the service's people directory, written by the bench as the identity
     consumer would);
  2. baseline: the same 100,000 inbox rows inserted by the bench into the service's own table in batches of the
     service's batch size (executemany, one transaction a batch), timed, then deleted;
  3. the service: a notice to everyone created over the bus (`notices.create`, no approval: the threshold is set
     above the residents), timed until every inbox row is there and the notice is `sent`; meanwhile
     `--readers` clients ask `inbox.list` (the /inbox page's one call) for random residents, closed loop, and
     their latencies are the inbox's p50/p99 during the fan-out.
Target (issue 18, on 2 cores): all 100,000 within 10 s on PostgreSQL, the inbox p99 ≤ 100 ms meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
from sqlalchemy import delete, func, insert, select

from bench.taps import NODE, Node, each_database, log, machine, percentile, rss_mb, tear_down
from services.notices.fanout import BATCH
from services.notices.models import inbox_entries, items, people
from towntip.kernel import db, errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import notices as c
from towntip.kernel.contracts.actor import Actor

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TARGET_SECONDS = 10.0  # on PostgreSQL
TARGET_P99_MS = 100.0
STAFF = Actor(user_id="bench-staff-01", global_handle=f"staff@{NODE}", display_name="Bench staff", roles=("staff",))


def resident(i: int) -> str:
    return f"r{i:06d}@{NODE}"


async def start_notices(node: Node, nc: nats.NATS, people_n: int, timeout: float = 90.0) -> int:
    (node.workdir / "data").mkdir(parents=True, exist_ok=True)
    env = node.env("notices") | {"TOWNTIP_NOTICES_APPROVAL_OVER": str(people_n + 1)}
    proc = node.spawn("notices", "services.notices", env)
    node.more_points.append(proc)  # stopped with the node's other processes
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"notices service exited with {proc.returncode}; see {node.logs['notices']}")
        try:
            await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_NOTICE_LIST), {"actor": STAFF.model_dump()},
                           timeout=2.0)
            return proc.pid
        except errors.ServiceError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def seed_people(engine: Any, n: int) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        for lo in range(0, n, 20_000):
            await conn.execute(insert(people), [{"global_handle": resident(i), "user_id": None, "joined_at": now}
                                                for i in range(lo, min(n, lo + 20_000))])


async def baseline(engine: Any, n: int) -> dict[str, Any]:
    """The same rows the fan-out makes, inserted in batches by the bench (client-side rows, executemany)."""
    item_id, now = str(uuid.uuid4()), utcnow()
    async with engine.begin() as conn:
        await conn.execute(insert(items).values(id=item_id, kind="notice", title="baseline", body="-", links=[],
                                                sender="bench", origin_node=NODE, version=1, created_at=now,
                                                updated_at=now))
    start = time.perf_counter()
    for lo in range(0, n, BATCH):
        async with engine.begin() as conn:
            await conn.execute(insert(inbox_entries), [
                {"person": resident(i), "item_id": item_id, "kind": "notice", "delivered_at": now}
                for i in range(lo, min(n, lo + BATCH))])
    seconds = time.perf_counter() - start
    async with engine.begin() as conn:
        await conn.execute(delete(inbox_entries).where(inbox_entries.c.item_id == item_id))
        await conn.execute(delete(items).where(items.c.id == item_id))
    return {"seconds": seconds, "rows_per_s": n / seconds}


async def fan_out(nc: nats.NATS, engine: Any, args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    stop = asyncio.Event()
    rng = random.Random(args.seed)

    async def reader() -> None:
        while not stop.is_set():
            who = Actor(user_id="bench-reader-1", global_handle=resident(rng.randrange(args.people)),
                        display_name="r")
            t0 = time.perf_counter()
            await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_INBOX_LIST), {"actor": who.model_dump()},
                           timeout=30)
            latencies.append((time.perf_counter() - t0) * 1000)

    readers = [asyncio.create_task(reader()) for _ in range(args.readers)]
    await asyncio.sleep(0.5)  # the readers' latency settles before the notice
    t0 = time.perf_counter()
    made = await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_NOTICE_CREATE), {
        "actor": STAFF.model_dump(), "title": "全戸配信のお知らせ", "body": "ベンチマーク",
        "target": {"kind": "everyone"}}, timeout=60)
    mark = len(latencies)
    while True:
        got = await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_NOTICE_GET),
                             {"actor": STAFF.model_dump(), "notice_id": made["id"]}, timeout=60)
        if got["state"] == "sent":
            break
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - t0
    stop.set()
    await asyncio.gather(*readers)
    async with engine.connect() as conn:
        rows = await conn.scalar(select(func.count()).select_from(inbox_entries).where(
            inbox_entries.c.item_id == made["id"]))
    during = sorted(latencies[mark:])
    return {"seconds": seconds, "rows": rows, "rows_per_s": (rows or 0) / seconds, "recipients": got["recipients"],
            "reads": len(during), "p50_ms": percentile(during, 50), "p99_ms": percentile(during, 99)}


async def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind} ==", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"towntip-bench-notices-{kind}-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}" if kind == "postgres" else ""
    url = args.pg_url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/data/notices.sqlite3"
    node = Node(workdir=workdir, database_url=url if kind == "postgres" else "", schema=schema)
    result: dict[str, Any] = {"database": kind}
    nc, engine = None, None
    try:
        node.start_nats()
        assert node.nats is not None
        nc = await nats.connect(node.nats.url, connect_timeout=5)
        log("starting python -m services.notices")
        pid = await start_notices(node, nc, args.people)
        engine = db.create_engine(url, schema=schema or None)
        log(f"residents: {args.people:,}")
        await seed_people(engine, args.people)
        log(f"baseline: {args.people:,} inbox rows inserted in batches of {BATCH:,}")
        result["baseline"] = await baseline(engine, args.people)
        log(f"service: one notice to everyone, {args.readers} inbox readers meanwhile")
        result["service"] = await fan_out(nc, engine, args)
        result["memory"] = {"notices": rss_mb(pid)}
    except Exception as exc:  # noqa: BLE001 - a failed database run is reported in its figures, the other goes on
        result["error"] = f"{exc.__class__.__name__}: {exc}"
        print(f"!! {kind}: {result['error']}", flush=True)
    finally:
        if engine is not None:
            await engine.dispose()
        await tear_down(node, nc, kind, args.pg_url, schema, workdir)
    return result


def report(mach: dict[str, Any], results: list[dict[str, Any]], skipped: dict[str, str]) -> None:
    print("\n== TownTip notices benchmark: one notice to every resident ==")
    print(f"machine : {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB RAM")
    for r in results:
        print(f"\n-- {r['database']} --")
        if "error" in r:
            print(f"  error: {r['error']}")
            continue
        base, svc = r["baseline"], r["service"]
        print(f"  baseline: batched INSERT of the same rows : {base['seconds']:6.2f} s  "
              f"({base['rows_per_s']:,.0f} rows/s)")
        print(f"  fan-out through the service               : {svc['seconds']:6.2f} s  "
              f"({svc['rows_per_s']:,.0f} rows/s, {svc['rows']:,} of {svc['recipients']:,} inboxes) "
              f"= {svc['seconds'] / base['seconds']:.2f}× the baseline's time")
        print(f"  inbox.list meanwhile                      : p50 {svc['p50_ms']:.1f} ms, "
              f"p99 {svc['p99_ms']:.1f} ms ({svc['reads']:,} reads)")
        if r["database"] == "postgres":
            ok = svc["seconds"] <= TARGET_SECONDS and (svc["p99_ms"] or 0) <= TARGET_P99_MS
            print(f"  target ≤ {TARGET_SECONDS:.0f} s and p99 ≤ {TARGET_P99_MS:.0f} ms: {'met' if ok else 'NOT met'}")
    for kind, why in skipped.items():
        print(f"\n-- {kind} -- skipped: {why}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.notices", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--people", type=int, default=100_000, help="residents, all targeted")
    p.add_argument("--readers", type=int, default=2, help="concurrent inbox readers during the fan-out")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    if args.people < 1 or args.readers < 0:
        p.error("--people ≥ 1, --readers ≥ 0")
    return args


async def amain(args: argparse.Namespace) -> int:
    mach = machine()
    results, skipped = await each_database(args, run_one)
    report(mach, results, skipped)
    if args.json:
        args.json.write_text(json.dumps({"machine": mach, "args": {k: str(v) for k, v in vars(args).items()},
                                         "skipped": skipped, "results": results}, indent=2, default=str))
    return 1 if any("error" in r for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
