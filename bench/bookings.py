"""Booking attempts/s of one node with many clients racing for a few popular slots:
`python -m bench.bookings [--db sqlite|postgres|both]`.

For each database, in one run and on one freshly started nats-server:
  1. baselines, the same racing pattern without the service:
     - bare INSERT attempts against the same exclusion constraint (PostgreSQL: a table with
       `EXCLUDE USING gist (facility_id WITH =, tstzrange(starts_at, held_until) WITH &&)`; a conflict is SQLSTATE
       23P01), each behind a transaction-scoped advisory lock of the facility's day (without it, 32 inserts racing
       on one range wait on each other inside the constraint and deadlock or stall), or, on SQLite, the same guard
       the service uses (check for an overlap, then insert, in one BEGIN IMMEDIATE transaction); one transaction
       per attempt, from as many connections as there are clients;
     - raw NATS request/reply round trips/s (an echo responder in the bench, the same concurrency);
  2. attempts/s through the bookings service (`python -m services.bookings`, a separate process): `--clients`
     concurrent clients (each a different person) send `bookings.create` for one of `--popular` slots of a round,
     `--per-client` attempts each per round, round after round on later days, until `--attempts` are sent. Every
     attempt is answered: confirmed, or refused `booking.slot_taken`. Then the database is read: no two holding
     bookings of the facility overlap, every popular slot of a round is booked exactly once, and the number of
     confirmations equals the number of booking rows.
Target (issue 17): at least 500 attempts/s on PostgreSQL, 0 overlapping bookings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import nats
from sqlalchemy import Column, DateTime, MetaData, String, Table, and_, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from bench.taps import Node, drop_schema, each_database, log, machine, rss_mb, tear_down
from towntip.kernel import db, errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import JST
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.uow import RETRYABLE_SQLSTATES, sqlstate

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
NODE = "bench"
FACILITY = "bench-hall"
TARGET_ATTEMPTS_PER_S = 500.0  # on PostgreSQL
STEP = 30  # minutes: the facility's grid
OPEN, CLOSE = dt.time(9, 0), dt.time(21, 0)
SLOTS_PER_DAY = (CLOSE.hour - OPEN.hour) * 60 // STEP


def facility() -> dict[str, Any]:
    every_day = {d: {"open": OPEN.isoformat("minutes"), "close": CLOSE.isoformat("minutes")} for d in c.WEEKDAYS}
    return {"id": FACILITY, "name_ja": "ベンチ用ホール", "name_en": "Bench hall", "kind": "hall", "hours": every_day,
            "closed_on_holidays": False, "layout": {"kind": "grid", "step_minutes": STEP},
            "rules": {"max_days_ahead": c.MAX_DAYS_AHEAD_LIMIT, "min_notice_minutes": 0}}


def rounds(args: argparse.Namespace, first_day: dt.date) -> list[list[tuple[dt.datetime, dt.datetime]]]:
    """Each round: `popular` slots of 30 minutes on one day (a day holds SLOTS_PER_DAY // popular rounds)."""
    per_round = args.clients * args.per_client
    n = -(-args.attempts // per_round)
    per_day = SLOTS_PER_DAY // args.popular
    out = []
    for r in range(n):
        day = first_day + dt.timedelta(days=r // per_day)
        base = dt.datetime.combine(day, OPEN, JST) + dt.timedelta(minutes=STEP * args.popular * (r % per_day))
        out.append([(base + dt.timedelta(minutes=STEP * i), base + dt.timedelta(minutes=STEP * (i + 1)))
                    for i in range(args.popular)])
    if (first_day + dt.timedelta(days=n // per_day)) > first_day + dt.timedelta(days=c.MAX_DAYS_AHEAD_LIMIT - 1):
        raise SystemExit("too many rounds for the facility's booking window: fewer --attempts or more --popular")
    return out


async def race(rounds_: list[list[tuple[dt.datetime, dt.datetime]]], args: argparse.Namespace,
               attempt: Any) -> dict[str, Any]:
    """Round after round, `clients` tasks each make `per_client` attempts at random popular slots of the round;
    `attempt(client, start, end)` answers True (booked) or False (taken)."""
    rng = random.Random(args.seed)
    booked = taken = 0
    latencies: list[float] = []
    sent = 0

    async def client(i: int, slots: list[tuple[dt.datetime, dt.datetime]], picks: list[int]) -> None:
        nonlocal booked, taken
        for k in picks:
            t = time.perf_counter()
            ok = await attempt(i, *slots[k])
            latencies.append(time.perf_counter() - t)
            if ok:
                booked += 1
            else:
                taken += 1

    t0 = time.perf_counter()
    for slots in rounds_:
        left = args.attempts - sent
        if left <= 0:
            break
        plan = [[rng.randrange(len(slots)) for _ in range(args.per_client)] for _ in range(args.clients)]
        plan = plan[: -(-left // args.per_client)]
        sent += sum(len(p) for p in plan)
        await asyncio.gather(*(client(i, slots, p) for i, p in enumerate(plan)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {"attempts": booked + taken, "booked": booked, "taken": taken, "seconds": elapsed,
            "per_s": (booked + taken) / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def raw_table(md: MetaData) -> Table:
    ts = DateTime(timezone=True)
    return Table("bench_raw_bookings", md, Column("id", String(36), primary_key=True),
                 Column("facility_id", String(48), nullable=False), Column("starts_at", ts, nullable=False),
                 Column("held_until", ts, nullable=False), Column("state", String(16), nullable=False))


async def bench_raw(url: str, schema: str | None, args: argparse.Namespace,
                    rounds_: list[list[tuple[dt.datetime, dt.datetime]]]) -> dict[str, Any]:
    """The baseline: the racing pattern as bare guarded INSERTs, one transaction per attempt."""
    engine = db.create_engine(url, schema=schema, pool_size=args.clients)
    table = raw_table(MetaData())
    pg = engine.dialect.name == "postgresql"
    try:
        await db.ensure_schema(engine, schema)
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            if pg:
                await conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public"))
                await conn.execute(text(
                    "ALTER TABLE bench_raw_bookings ADD CONSTRAINT ex_bench_raw EXCLUDE USING gist "
                    "(facility_id WITH =, tstzrange(starts_at, held_until, '[)') WITH &&) "
                    "WHERE (state IN ('requested', 'confirmed'))"))
        t = table.c
        retries = {"n": 0}

        async def attempt(_client: int, start: dt.datetime, end: dt.datetime) -> bool:
            row = {"id": str(uuid.uuid4()), "facility_id": FACILITY, "starts_at": start, "held_until": end,
                   "state": "confirmed"}
            while True:
                try:
                    async with engine.begin() as conn:
                        if pg:  # one writer per facility and day, as any writer racing on a range must
                            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                                               {"k": f"{FACILITY}:{start.date()}"})
                        else:  # SQLite: the service's guard (the write lock is held from BEGIN IMMEDIATE)
                            clash = (await conn.execute(select(t.id).where(
                                t.facility_id == FACILITY, t.starts_at < end, t.held_until > start).limit(1))).first()
                            if clash is not None:
                                return False
                        await conn.execute(table.insert(), row)
                    return True
                except IntegrityError as exc:
                    if sqlstate(exc) == "23P01":  # the exclusion constraint: the slot is taken
                        return False
                    raise
                except DBAPIError as exc:
                    # Should inserts still deadlock inside the constraint's check (40P01), PostgreSQL aborts one,
                    # which tries again, as the service's unit of work does.
                    if sqlstate(exc) not in RETRYABLE_SQLSTATES:
                        raise
                    retries["n"] += 1

        result = await race(rounds_, args, attempt)
        result["overlaps"] = await overlaps(engine, table)
        result["retries"] = retries["n"]
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.drop_all)
        return result
    finally:
        await engine.dispose()


async def bench_reply(nc: nats.NATS, args: argparse.Namespace,
                      rounds_: list[list[tuple[dt.datetime, dt.datetime]]]) -> dict[str, Any]:
    """The baseline of the bus: an echo responder answering the same number of requests, same concurrency."""
    subject = f"bench.{uuid.uuid4().hex}"

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    sub = await nc.subscribe(subject, cb=echo)
    payload = json.dumps({"facility_id": FACILITY, "purpose": "bench", "start": "x" * 25, "end": "x" * 25}).encode()

    async def attempt(_client: int, _start: dt.datetime, _end: dt.datetime) -> bool:
        await nc.request(subject, payload, timeout=10)
        return True

    try:
        return await race(rounds_, args, attempt)
    finally:
        await sub.unsubscribe()


async def overlaps(engine: Any, table: Table) -> int:
    """Pairs of holding rows of the facility whose [starts_at, held_until) overlap (must be 0)."""
    a, b = table.alias("a"), table.alias("b")
    holding = ("requested", "offered", "confirmed", "checked_in")
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(a).join(b, and_(
            a.c.facility_id == b.c.facility_id, a.c.id < b.c.id, a.c.starts_at < b.c.held_until,
            b.c.starts_at < a.c.held_until)).where(a.c.state.in_(holding), b.c.state.in_(holding)))).scalar_one())


async def start_bookings(node: Node, nc: nats.NATS, timeout: float = 60.0) -> int:
    (node.workdir / "data").mkdir(parents=True, exist_ok=True)
    proc = node.spawn("bookings", "services.bookings", node.env("bookings"))
    node.more_points.append(proc)  # stopped with the node's other processes
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"bookings service exited with {proc.returncode}; see {node.logs['bookings']}")
        try:
            await rpc.call(nc, subjects.svc(NODE, c.SERVICE, c.EP_FACILITY_PUT), facility(), timeout=2.0)
            return proc.pid
        except errors.ServiceError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def bench_service(nc: nats.NATS, args: argparse.Namespace,
                        rounds_: list[list[tuple[dt.datetime, dt.datetime]]]) -> dict[str, Any]:
    subject = subjects.svc(NODE, c.SERVICE, c.EP_BOOKING_CREATE)
    actors = [Actor(user_id=f"bench-user-{i:04d}", global_handle=f"racer{i}@{NODE}", display_name=f"Racer {i}",
                    roles=("citizen",)).model_dump(mode="json") for i in range(args.clients)]
    refused: dict[str, int] = {}

    async def attempt(client: int, start: dt.datetime, end: dt.datetime) -> bool:
        body = {"actor": actors[client], "facility_id": FACILITY, "start": start.isoformat(),
                "end": end.isoformat(), "purpose": "ベンチ bench"}
        try:
            await rpc.call(nc, subject, body, timeout=30)
            return True
        except errors.ServiceError as exc:
            refused[exc.error_code] = refused.get(exc.error_code, 0) + 1
            if exc.error_code != c.BOOKING_TAKEN.code:
                raise
            return False

    result = await race(rounds_, args, attempt)
    result["refusals"] = refused
    return result


async def check_service_db(url: str, schema: str | None, rounds_: list[list[tuple[dt.datetime, dt.datetime]]],
                           args: argparse.Namespace, booked: int) -> dict[str, Any]:
    """Read the service's own database after the run: overlaps, rows, and each raced slot booked exactly once."""
    from services.bookings.models import bookings  # the bench reads the service's table as its operator would

    engine = db.create_engine(url, schema=schema)
    try:
        b = bookings.c
        async with engine.connect() as conn:
            rows = (await conn.execute(select(b.starts_at).where(b.facility_id == FACILITY,
                                                                  b.state.in_(c.HOLDING_STATES)))).all()
        starts = sorted(db.aware(r.starts_at) for r in rows)
        raced = {s.astimezone(dt.UTC) for r in rounds_ for s, _ in r}
        sent_rounds = -(-args.attempts // (args.clients * args.per_client))
        raced_sent = {s.astimezone(dt.UTC) for r in rounds_[:sent_rounds] for s, _ in r}
        return {"overlaps": await overlaps(engine, bookings), "rows": len(starts), "confirmed_answers": booked,
                "distinct_slots": len(set(starts)), "rows_outside_raced_slots": len(set(starts) - raced),
                "raced_slots": len(raced_sent), "raced_slots_booked": len(set(starts) & raced_sent)}
    finally:
        await engine.dispose()


async def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind} ==", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"towntip-bench-bookings-{kind}-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}" if kind == "postgres" else ""
    url = args.pg_url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/data/bookings.sqlite3"
    node = Node(workdir=workdir, database_url=url if kind == "postgres" else "", schema=schema)
    result: dict[str, Any] = {"database": kind}
    nc = None
    first_day = dt.datetime.now(JST).date() + dt.timedelta(days=2)
    try:
        node.start_nats()
        assert node.nats is not None
        raw_url = url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/raw/raw.sqlite3"
        (workdir / "raw").mkdir(parents=True, exist_ok=True)
        log(f"baseline: bare guarded INSERT attempts × {args.attempts}, {args.clients} connections")
        result["raw"] = await bench_raw(raw_url, (schema + "_raw") if schema else None, args, rounds(args, first_day))
        nc = await nats.connect(node.nats.url, connect_timeout=5)
        log(f"baseline: NATS request/reply × {args.attempts}, {args.clients} concurrent")
        result["reply"] = await bench_reply(nc, args, rounds(args, first_day))
        log("starting python -m services.bookings")
        pid = await start_bookings(node, nc)
        rounds_ = rounds(args, first_day)
        log(f"service: {args.attempts} attempts, {args.clients} clients, {args.popular} popular slots a round")
        result["service"] = await bench_service(nc, args, rounds_)
        result["check"] = await check_service_db(url, schema or None, rounds_, args,
                                                 result["service"]["booked"])
        assert node.nats.proc is not None
        result["memory"] = {"nats-server": rss_mb(node.nats.proc.pid), "bookings": rss_mb(pid)}
    except Exception as exc:  # noqa: BLE001 - a failed database run is reported in its figures, the other goes on
        result["error"] = f"{exc.__class__.__name__}: {exc}"
        print(f"!! {kind}: {result['error']}", flush=True)
        for name, path in node.logs.items():
            with contextlib.suppress(OSError):
                tail = [ln for ln in path.read_text(errors="replace").splitlines() if "Error" in ln][-5:]
                print(f"   --- errors in the {name} log ---\n   " + "\n   ".join(tail))
    finally:
        if kind == "postgres":
            with contextlib.suppress(Exception):
                await drop_schema(args.pg_url, schema + "_raw")
        await tear_down(node, nc, kind, args.pg_url, schema, workdir)
    return result


def report(mach: dict[str, Any], results: list[dict[str, Any]], skipped: dict[str, str]) -> None:
    print("\n== TownTip bookings benchmark ==")
    print(f"machine : {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB RAM")
    for r in results:
        print(f"\n-- {r['database']} --")
        if "error" in r:
            print(f"  error: {r['error']}")
            continue
        raw, rep, svc, chk = r["raw"], r["reply"], r["service"], r["check"]
        print(f"  baseline bare guarded INSERT attempts/s : {raw['per_s']:>8,.0f}  "
              f"(booked {raw['booked']:,}, taken {raw['taken']:,}, overlaps {raw['overlaps']}, "
              f"deadlocks retried {raw['retries']:,}, "
              f"p50 / p99 {raw['p50_ms']:.1f} / {raw['p99_ms']:.1f} ms)")
        print(f"  baseline NATS request/reply/s           : {rep['per_s']:>8,.0f}  "
              f"(p50 / p99 {rep['p50_ms']:.1f} / {rep['p99_ms']:.1f} ms)")
        print(f"  booking attempts/s through the service  : {svc['per_s']:>8,.0f}  "
              f"= {svc['per_s'] / raw['per_s']:.2f}× bare INSERT attempts/s, "
              f"{svc['per_s'] / rep['per_s']:.3f}× request/reply/s  ({svc['attempts']:,} in {svc['seconds']:.1f} s)")
        print(f"  answers                                 : booked {svc['booked']:,}, refused {svc['refusals']}")
        print(f"  latency p50 / p99                       : {svc['p50_ms']:.1f} / {svc['p99_ms']:.1f} ms")
        print(f"  overlapping holding bookings            : {chk['overlaps']}")
        print(f"  rows / confirmations answered           : {chk['rows']:,} / {chk['confirmed_answers']:,}")
        print(f"  raced slots booked / raced              : {chk['raced_slots_booked']:,} / {chk['raced_slots']:,}"
              f" (rows outside them: {chk['rows_outside_raced_slots']})")
        print("  RSS MB nats-server / bookings           : "
              + " / ".join(f"{v:.0f}" if v is not None else "?" for v in r["memory"].values()))
    print("\n-- target (issue 17: ≥ 500 attempts/s on PostgreSQL, 0 overlapping bookings) --")
    for r in results:
        if "service" in r:
            v, ov = r["service"]["per_s"], r["check"]["overlaps"]
            ok = v >= TARGET_ATTEMPTS_PER_S and ov == 0 and r["check"]["rows"] == r["check"]["confirmed_answers"]
            print(f"  {r['database']:<8}: {v:,.0f} attempts/s, {ov} overlaps {'PASS' if ok else 'FAIL'}"
                  + ("" if r["database"] == "postgres" else " (target is for PostgreSQL)"))
    for kind, why in skipped.items():
        print(f"  {kind}: skipped ({why})")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.bookings", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--attempts", type=int, default=10_000, help="booking attempts in the measured run")
    p.add_argument("--clients", type=int, default=32, help="concurrent clients (each a different person)")
    p.add_argument("--popular", type=int, default=4, help="popular slots raced for in each round")
    p.add_argument("--per-client", type=int, default=4, help="attempts of each client in each round")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    if args.attempts < 1 or args.clients < 1 or not 1 <= args.popular <= SLOTS_PER_DAY or args.per_client < 1:
        p.error(f"--attempts, --clients, --per-client ≥ 1; --popular 1-{SLOTS_PER_DAY}")
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
