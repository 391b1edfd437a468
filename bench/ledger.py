"""Ledger postings/s of one node: `python -m bench.ledger [--db sqlite|postgres|both]`.

For each database, in one run and on one freshly started nats-server:
  1. baselines: raw JetStream publish/s, raw INSERT/s (one row per transaction, and 256 rows per transaction);
  2. postings/s through the points service (`python -m services.points`, a separate process): batches of entries
     sent to its ledger endpoint (svc.<node>.points.admin.ledger.post) by several concurrent callers, each entry with
     its own idempotency key; 4 in 5 entries award points to one of 2,000 people, 1 in 5 move points from one
     person to another (debits checked against locked balances). A posting is one leg of an entry: an entry here
     has two. The figure counts what the service committed and answered; then the ledger is checked: every asset
     sums to zero, and the number of entries is the number sent.
Target (issue 4): at least 5,000 postings/s on PostgreSQL on 2 cores.
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

from bench.taps import (
    Node,
    bench_inserts,
    bench_jetstream,
    each_database,
    log,
    machine,
    tear_down,
)
from towntip.kernel import runtime
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import ledger as lc

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
NODE = "bench"
PEOPLE = 2000
TARGET_POSTINGS_PER_S = 5000.0  # on PostgreSQL


def make_entries(n: int, rng: random.Random, tag: str) -> list[dict[str, Any]]:
    """Awards first (so transfers have something to move), then a mix: 4 awards to 1 transfer."""
    out = []
    for i in range(n):
        p = f"person:b{rng.randrange(PEOPLE)}"
        if i >= PEOPLE and i % 5 == 4:
            q = f"person:b{rng.randrange(PEOPLE)}"
            if q == p:
                q = f"project:b{rng.randrange(50)}"
            legs: list[dict[str, Any]] = [{"account": p, "asset": "machi-point", "amount": -1},
                    {"account": q, "asset": "machi-point", "amount": 1}]
            kind = "transfer"
        else:
            legs = [{"account": "system:issuance", "asset": "machi-point", "amount": -rng.choice((1, 5))},
                    {"account": p, "asset": "machi-point", "amount": 0}]
            legs[1]["amount"] = -legs[0]["amount"]
            kind = "award"
        out.append({"key": f"{tag}-{i:08d}", "kind": kind, "legs": legs})
    return out


async def post_all(nc: nats.NATS, entries: list[dict[str, Any]], batch: int, callers: int) -> dict[str, Any]:
    """Send the entries in batches from `callers` concurrent callers; count what was posted, refused, repeated."""
    subject = subjects.svc(NODE, "points", lc.EP_LEDGER_POST)
    batches = [entries[i:i + batch] for i in range(0, len(entries), batch)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    counts = {"posted": 0, "duplicate": 0, "refused": 0}
    reasons: dict[str, int] = {}
    latencies: list[float] = []

    async def caller() -> None:
        while not queue.empty():
            b = queue.get_nowait()
            t = time.perf_counter()
            out = await rpc.call(nc, subject, {"actor": "bench", "entries": b}, timeout=60)
            latencies.append(time.perf_counter() - t)
            for r in out["results"]:
                counts[r["status"]] += 1
                if r["status"] == "refused":  # e.g. "not enough to pay" (a transfer from someone with 0)
                    why = r["reason"].split(":")[0][:40]
                    reasons[why] = reasons.get(why, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - t0
    legs = sum(len(e["legs"]) for e in entries)
    latencies.sort()
    return {"entries": len(entries), "postings": legs, "seconds": elapsed, "entries_per_s": len(entries) / elapsed,
            "postings_per_s": legs / elapsed, "batch": batch, "callers": callers, "counts": counts,
            "refusals": reasons, "batch_p50_ms": latencies[len(latencies) // 2] * 1000,
            "batch_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


async def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind} ==", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"towntip-bench-ledger-{kind}-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}" if kind == "postgres" else ""
    url = args.pg_url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/data/points.sqlite3"
    node = Node(workdir=workdir, database_url=url if kind == "postgres" else "", schema=schema)
    result: dict[str, Any] = {"database": kind}
    nc = None
    try:
        node.start_nats()
        assert node.nats is not None
        log(f"baseline: JetStream publish_async × {args.entries}")
        result["jetstream"] = await bench_jetstream(node.nats.url, args.entries)
        raw_url = url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/raw/raw.sqlite3"
        log("baseline: raw INSERTs (one per transaction, then 256 per transaction)")
        result["insert"] = await bench_inserts(raw_url, schema or None, args.entries, 10.0, 30.0)

        nc = await nats.connect(node.nats.url, connect_timeout=5)
        log("starting python -m services.points")
        await node.start_points(nc)
        rng = random.Random(args.seed)
        log("warm-up: 2,000 entries (not measured)")
        await post_all(nc, make_entries(PEOPLE, rng, "warm"), args.batch, args.callers)
        runtime.settle_heap()
        log(f"postings: {args.entries} entries in batches of {args.batch}, {args.callers} callers")
        result["ledger"] = await post_all(nc, make_entries(args.entries, rng, "run"), args.batch, args.callers)
        totals = await rpc.call(nc, subjects.svc(NODE, "points", lc.EP_LEDGER_TOTALS), None, timeout=30)
        result["totals"] = totals["totals"]
        result["memory"] = node.memory()
    except Exception as exc:  # noqa: BLE001 - a failed database run is reported in its figures, the other goes on
        result["error"] = f"{exc.__class__.__name__}: {exc}"
        print(f"!! {kind}: {result['error']}", flush=True)
        for name, path in node.logs.items():
            with contextlib.suppress(OSError):
                tail = [ln for ln in path.read_text(errors="replace").splitlines() if "Error" in ln][-5:]
                print(f"   --- errors in the {name} log ---\n   " + "\n   ".join(tail))
    finally:
        await tear_down(node, nc, kind, args.pg_url, schema, workdir)
    return result


def report(mach: dict[str, Any], results: list[dict[str, Any]], skipped: dict[str, str]) -> None:
    print("\n== TownTip ledger benchmark ==")
    print(f"machine : {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB RAM")
    for r in results:
        print(f"\n-- {r['database']} --")
        if "error" in r:
            print(f"  error: {r['error']}")
            continue
        js, ins, lg = r["jetstream"], r["insert"], r["ledger"]
        print(f"  baseline JetStream publish_async : {js['per_s']:>10,.0f} msg/s")
        print(f"  baseline INSERT, 1 row per txn    : {ins['single']['per_s']:>10,.0f} rows/s")
        print(f"  baseline INSERT, 256 rows per txn : {ins['batch']['per_s']:>10,.0f} rows/s")
        print(f"  ledger entries/s                  : {lg['entries_per_s']:>10,.0f}  "
              f"({lg['entries']:,} entries, batches of {lg['batch']}, {lg['callers']} callers, {lg['seconds']:.1f} s)")
        print(f"  ledger postings/s                 : {lg['postings_per_s']:>10,.0f}  "
              f"= {lg['postings_per_s'] / ins['single']['per_s']:.1f}× 1-row INSERT/s, "
              f"{lg['postings_per_s'] / ins['batch']['per_s']:.2f}× batched INSERT rows/s, "
              f"{lg['postings_per_s'] / js['per_s']:.2f}× JetStream publish/s")
        print(f"  batch latency p50 / p99           : {lg['batch_p50_ms']:.1f} / {lg['batch_p99_ms']:.1f} ms")
        print(f"  outcomes                          : {lg['counts']} {lg['refusals'] or ''}")
        print(f"  every asset sums to zero          : {all(v == 0 for v in r['totals'].values())} {r['totals']}")
        print(f"  node RSS (MB)                     : {r['memory']['rss_mb']}")
    print("\n-- target (issue 4: ≥ 5,000 postings/s on PostgreSQL, 2 cores) --")
    for r in results:
        if "ledger" in r:
            v = r["ledger"]["postings_per_s"]
            ok = v >= TARGET_POSTINGS_PER_S
            print(f"  {r['database']:<8}: {v:,.0f} postings/s {'PASS' if ok else 'FAIL'}"
                  + ("" if r["database"] == "postgres" else " (target is for PostgreSQL)"))
    for kind, why in skipped.items():
        print(f"  {kind}: skipped ({why})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--entries", type=int, default=60_000, help="entries in the measured run (2 postings each)")
    p.add_argument("--batch", type=int, default=1000, help="entries per request (at most 1000, the endpoint's limit)")
    p.add_argument("--callers", type=int, default=2, help="concurrent callers")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    if args.entries < 1 or not 1 <= args.batch <= 1000 or args.callers < 1:
        p.error("--entries ≥ 1, --batch 1-1000, --callers ≥ 1")
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
    sys.exit(main())
