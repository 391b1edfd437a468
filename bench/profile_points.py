"""Where a tap's time goes inside the points service: `python -m bench.profile_points [--db postgres] [--taps N]`.

Runs PointsService in this process (own nats-server, own schema or SQLite file), publishes N taps as fast as
possible, and reports:
  - wall time per SQL statement kind (SQLAlchemy before/after_cursor_execute: driver call incl. the wait for the
    database and any event-loop interleaving), with calls and rows;
  - wall time of the consumer's transactions (`_apply_and_settle`) and of the relay's rounds (`publish_pending`),
    wrapped on the instances (the service code is not changed);
  - with --cprofile, the top functions of the whole process by own and cumulative time.
This is a diagnostic, not a benchmark: the figures of record come from `python -m bench.taps`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import random
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import nats
from sqlalchemy import event
from sqlalchemy.pool import Pool

from bench.taps import CARDS, NODE, PG_URL, Arrivals, drop_schema, event_codes, make_taps, pg_reachable
from services.points.app import PointsService
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts.points import EventIn
from towntip.kernel.settings import ServiceSettings
from towntip.node.natsd import NatsServer


class Timer:
    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.rows: dict[str, int] = defaultdict(int)

    def add(self, key: str, seconds: float, rows: int = 1) -> None:
        self.total[key] += seconds
        self.calls[key] += 1
        self.rows[key] += rows

    def wrap(self, obj: Any, name: str, key: str) -> None:
        original = getattr(obj, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                n = len(args[0]) if args and isinstance(args[0], list) else 1
                self.add(key, time.perf_counter() - t0, n)

        setattr(obj, name, timed)

    def print(self, title: str, wall: float) -> None:
        print(f"\n{title} (wall {wall:.2f} s)")
        print(f"{'seconds':>8} {'% wall':>7} {'calls':>7} {'rows':>8} {'ms/call':>8}  what")
        for key, sec in sorted(self.total.items(), key=lambda kv: -kv[1]):
            c = self.calls[key]
            print(f"{sec:8.2f} {sec / wall:7.1%} {c:7d} {self.rows[key]:8d} {sec / c * 1000:8.2f}  {key}")


def statement_key(statement: str, executemany: bool) -> str:
    words = " ".join(statement.split())
    if words.upper().startswith(("INSERT", "UPDATE", "DELETE")):
        words = words[:60]
    else:
        words = words[:90]
    return ("[many] " if executemany else "") + words


def apply_pg_settings(settings: list[str]) -> None:
    """What-if experiments: `SET name=value` on every new database connection of this process (e.g.
    plan_cache_mode=force_custom_plan), without touching the service code or the server's configuration."""
    if not settings:
        return

    @event.listens_for(Pool, "connect")
    def _on_connect(dbapi_conn, _record):
        if "asyncpg" not in type(dbapi_conn).__module__:
            return
        cur = dbapi_conn.cursor()
        for item in settings:
            name, _, value = item.partition("=")
            cur.execute(f"SET {name} = '{value}'")
        cur.close()


async def run(args: argparse.Namespace) -> None:
    apply_pg_settings(args.pg_setting)
    workdir = Path(tempfile.mkdtemp(prefix="towntip-profile-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    url = args.pg_url if args.db == "postgres" else ""
    server = NatsServer(node_id=NODE, data_dir=workdir / "nats").start()
    svc = None
    nc = None
    prof = cProfile.Profile() if args.cprofile else None
    try:
        settings = ServiceSettings(
            service="points", node_id=NODE, nats_url=server.url, data_dir=str(workdir / "data"),
            database_url=url, database_schema=schema, card_key="00" * 32,
        )
        svc = PointsService(settings)
        await svc.start()
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        for code in event_codes(200 + args.taps + CARDS):  # a card earns an event's points once (make_taps)
            await rpc.call(nc, subjects.svc(NODE, "points", "events.put"), EventIn(code=code, name="profile"))
        arrivals = Arrivals()
        await nc.subscribe(subjects.evt(NODE, "points", "tap_recorded"), cb=arrivals.on_msg,
                           pending_msgs_limit=args.taps * 4 + 1024)
        rng = random.Random(1)
        cards = [f"{rng.getrandbits(64):016X}" for _ in range(CARDS)]
        # warm-up
        warm = make_taps(200, rng, cards)
        await asyncio.gather(*[await js.publish_async(s, p, headers=h) for s, p, h, *_ in warm])
        await arrivals.wait_for({k.encode() for *_, k in warm}, idle=20, limit=60)

        sql, phases = Timer(), Timer()
        starts: dict[int, float] = {}

        @event.listens_for(svc.engine.sync_engine, "before_cursor_execute")
        def _before(conn, cursor, statement, parameters, context, executemany):
            starts[id(cursor)] = time.perf_counter()

        @event.listens_for(svc.engine.sync_engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):
            t0 = starts.pop(id(cursor), None)
            if t0 is not None:
                n = len(parameters) if executemany and isinstance(parameters, list | tuple) else 1
                sql.add(statement_key(statement, executemany), time.perf_counter() - t0, n)

        assert svc.consumer is not None and svc.relay is not None
        phases.wrap(svc.consumer, "_apply_and_settle", "consumer: _apply_and_settle (txn + acks + replies)")
        phases.wrap(svc.consumer, "process", "consumer: process (decode + _apply_and_settle)")
        phases.wrap(svc.relay, "publish_pending", "relay: publish_pending (select, publish, ack wait, update)")

        taps = make_taps(args.taps, rng, cards)
        keys = {k.encode() for *_, k in taps}
        if prof is not None:
            prof.enable()
        t0 = time.perf_counter()
        futs = [await js.publish_async(s, p, headers=h) for s, p, h, *_ in taps]
        await asyncio.gather(*futs)
        ok = await arrivals.wait_for(keys, idle=30, limit=300)
        wall = time.perf_counter() - t0
        if prof is not None:
            prof.disable()
        got = sum(1 for k in keys if k in arrivals.keys)
        print(f"{args.db}: {got}/{args.taps} taps recorded in {wall:.2f} s = {got / wall:,.0f} taps/s "
              f"(complete: {ok}); consumer stats {svc.consumer.stats}")
        phases.print("Service phases (they overlap: relay and consumer run concurrently)", wall)
        sql.print("SQL statements (driver call time)", wall)
        if prof is not None:
            for order in ("tottime", "cumulative"):
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(order).print_stats(args.top)
                print(f"\ncProfile, whole process, by {order}:\n" + out.getvalue().split("\n", 6)[-1])
    finally:
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
        if svc is not None:
            with contextlib.suppress(Exception):
                await svc.stop()
        server.stop()
        if url:
            await drop_schema(url, schema)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile_points", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    p.add_argument("--taps", type=int, default=20_000)
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--cprofile", action="store_true", help="also cProfile the whole process")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--pg-setting", action="append", default=[], metavar="NAME=VALUE",
                   help="what-if: SET this on every PostgreSQL connection, e.g. plan_cache_mode=force_custom_plan")
    args = p.parse_args()

    async def go() -> None:
        if args.db == "postgres":
            why = await pg_reachable(args.pg_url)
            if why is not None:
                print(f"PostgreSQL unreachable at {args.pg_url} ({why}): nothing to profile")
                return
        await run(args)

    asyncio.run(go())


if __name__ == "__main__":
    main()
