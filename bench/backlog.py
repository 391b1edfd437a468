"""Taps/s end to end while a backlog of offline terminals flushes: `python -m bench.backlog [--db sqlite|postgres|both]`.

For each database, in one run and on one freshly started nats-server:
  1. baselines: raw JetStream publish/s, raw INSERT/s (one row per transaction, and 256 rows per transaction);
  2. the backlog: T terminals (default 20) were offline for a week; each holds M taps (default 1,000) in its own
     spool file (SQLite, as on the device). All reconnect at once: each real `TerminalAgent`, on its own NATS
     connection, sends its spool; the points service (`python -m services.points`, a separate process) credits
     them. The clock runs from the reconnection until every spool has every tap settled (the terminal heard its
     outcome); then the ledger is checked: the event's taps = T × M, points = T × M × the rule, nothing twice.
"""  # noqa: E501 (the first line is the argparse description)

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats

from bench.taps import (
    EVENT,
    Node,
    bench_inserts,
    bench_jetstream,
    each_database,
    log,
    machine,
    tear_down,
)
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import SETTLED, Spool, new_tap_id
from towntip.kernel import runtime
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts.points import EventOut, Tap

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
NODE = "bench"


def fill_spool(path: Path, terminal: str, n: int, rng: random.Random, since: datetime, first: int = 0) -> None:
    """What a terminal recorded while cut off for a week: n taps spread over the week, each of a card of its own
    (cards `first` … `first + n - 1`: a card earns an event's points once, and every tap here is a credit)."""
    week = 7 * 86400
    taps = []
    for i in range(n):
        at = since + timedelta(seconds=week * i / n)
        taps.append(Tap(tap_id=new_tap_id(int(at.timestamp() * 1000)), terminal_id=terminal,
                        card_idm=f"{first + i:016X}", event=EVENT, tapped_at=at))
    with Spool(path) as spool:
        spool.add_many(taps)


async def flush(url: str, workdir: Path, terminals: int, per: int, timeout: float) -> dict[str, Any]:
    agents: list[TerminalAgent] = []
    conns: list[nats.NATS] = []
    spools: list[Spool] = []
    try:
        for t in range(terminals):
            spools.append(Spool(workdir / f"t{t:02d}.sqlite3"))
        t0 = time.perf_counter()
        for t in range(terminals):
            nc = await nats.connect(url, connect_timeout=5)
            conns.append(nc)
            agent = TerminalAgent(nc, NODE, f"t{t:02d}", spools[t], event=EVENT, heartbeat_interval=0,
                                  publish_timeout=10.0, outcome_timeout=30.0)
            agents.append(agent)
            await agent.start()
        deadline = time.monotonic() + timeout
        settled = 0
        while time.monotonic() < deadline:
            settled = sum(s.counts()[SETTLED] for s in spools)
            if settled == terminals * per:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        return {"terminals": terminals, "per_terminal": per, "taps": terminals * per, "settled": settled,
                "seconds": elapsed, "per_s": settled / elapsed if elapsed else None,
                "complete": settled == terminals * per}
    finally:
        for agent in agents:
            with contextlib.suppress(Exception):
                await agent.stop()
        for nc in conns:
            with contextlib.suppress(Exception):
                await nc.close()
        for s in spools:
            s.close()


async def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind} ==", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"towntip-bench-backlog-{kind}-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}" if kind == "postgres" else ""
    url = args.pg_url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/data/points.sqlite3"
    node = Node(workdir=workdir, database_url=url if kind == "postgres" else "", schema=schema)
    result: dict[str, Any] = {"database": kind}
    nc = None
    total = args.terminals * args.taps
    try:
        node.start_nats()
        assert node.nats is not None
        log(f"baseline: JetStream publish_async × {total}")
        result["jetstream"] = await bench_jetstream(node.nats.url, total)
        raw_url = url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/raw/raw.sqlite3"
        log("baseline: raw INSERTs (one per transaction, then 256 per transaction)")
        result["insert"] = await bench_inserts(raw_url, schema or None, total, 10.0, 30.0)

        log(f"{args.terminals} spools of {args.taps} taps each, recorded over a week offline")
        rng = random.Random(args.seed)
        since = datetime.now(UTC) - timedelta(days=8)
        spool_dir = workdir / "spools"
        spool_dir.mkdir()
        for t in range(args.terminals):
            fill_spool(spool_dir / f"t{t:02d}.sqlite3", f"t{t:02d}", args.taps, rng, since, first=t * args.taps)

        nc = await nats.connect(node.nats.url, connect_timeout=5)
        log("starting python -m services.points")
        await node.start_points(nc)  # defines the event (1 point per participant)
        runtime.settle_heap()
        log("all terminals reconnect")
        result["flush"] = await flush(node.nats.url, spool_dir, args.terminals, args.taps, args.timeout)
        ev = EventOut.model_validate(await rpc.call(nc, subjects.svc(NODE, "points", "events.get"),
                                                    {"code": EVENT}, timeout=30))
        result["ledger"] = {"taps": ev.taps, "points_issued": ev.points_issued, "expected": total}
        result["memory"] = node.memory()
    except Exception as exc:  # noqa: BLE001 - a failed database run is reported in its figures, the other goes on
        result["error"] = f"{exc.__class__.__name__}: {exc}"
        print(f"!! {kind}: {result['error']}", flush=True)
    finally:
        await tear_down(node, nc, kind, args.pg_url, schema, workdir)
    return result


def report(mach: dict[str, Any], results: list[dict[str, Any]], skipped: dict[str, str]) -> None:
    print("\n== TownTip backlog benchmark: offline terminals flushing ==")
    print(f"machine : {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB RAM")
    for r in results:
        print(f"\n-- {r['database']} --")
        if "error" in r:
            print(f"  error: {r['error']}")
            continue
        js, ins, fl, lg = r["jetstream"], r["insert"], r["flush"], r["ledger"]
        print(f"  baseline JetStream publish_async : {js['per_s']:>10,.0f} msg/s")
        print(f"  baseline INSERT, 1 row per txn    : {ins['single']['per_s']:>10,.0f} rows/s")
        print(f"  baseline INSERT, 256 rows per txn : {ins['batch']['per_s']:>10,.0f} rows/s")
        print(f"  backlog flushed, taps/s           : {fl['per_s']:>10,.0f}  ({fl['terminals']} terminals × "
              f"{fl['per_terminal']:,} taps, {fl['seconds']:.1f} s, complete: {fl['complete']})")
        print(f"    = {fl['per_s'] / js['per_s']:.2f}× JetStream publish/s, "
              f"{fl['per_s'] / ins['single']['per_s']:.1f}× 1-row INSERT/s, "
              f"{fl['per_s'] / ins['batch']['per_s']:.2f}× batched INSERT rows/s")
        ok = lg["taps"] == lg["expected"] and lg["points_issued"] == lg["expected"]
        print(f"  ledger: {lg['taps']:,} taps, {lg['points_issued']:,} points for {lg['expected']:,} sent: "
              f"{'each once' if ok else 'MISMATCH'}")
        print(f"  node RSS (MB)                     : {r['memory']['rss_mb']}")
    for kind, why in skipped.items():
        print(f"  {kind}: skipped ({why})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.backlog", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--terminals", type=int, default=20)
    p.add_argument("--taps", type=int, default=1000, help="taps in each terminal's spool")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.terminals < 1 or args.taps < 1:
        p.error("--terminals and --taps must be positive")
    return args


async def amain(args: argparse.Namespace) -> int:
    mach = machine()
    results, skipped = await each_database(args, run_one)
    report(mach, results, skipped)
    if args.json:
        args.json.write_text(json.dumps({"machine": mach, "results": results, "skipped": skipped}, indent=2,
                                        default=str))
    bad = any("error" in r or not r["flush"]["complete"] or r["ledger"]["taps"] != r["ledger"]["expected"]
              for r in results)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
