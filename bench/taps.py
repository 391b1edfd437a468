"""Tap throughput, latency and memory of one node: `python -m bench.taps [--db sqlite|postgres|both]`.

For each database, in one run and on one freshly started nats-server:
  1. baselines: raw JetStream publish/s, raw INSERT/s (one row per transaction, and 256 rows per transaction);
  2. sustained taps/s end to end, the points service running as a separate process (`python -m services.points`);
  3. latency at a fixed offered rate, open loop;
  4. resident memory of the node's processes started by this bench.
Everything listens on 127.0.0.1; every child process, temp dir and PostgreSQL schema is removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.util
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import psutil
from nats.aio.client import Client as NATS
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import TooManyStalledMsgsError
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, text

from towntip.kernel import db, errors, runtime
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts.points import EventIn, Tap
from towntip.node.natsd import NatsServer, free_port, wait_for_port

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
NODE = "bench"
EVENT = "walk"
TERMINALS = ("t1", "t2", "t3", "t4")
CARDS = 300
VOLUNTEER_SHARE = 0.10
INSERT_BATCH = 256
PAYLOAD_BYTES = 250

TARGET_TAPS_PER_S = 2000.0  # on PostgreSQL
TARGET_P99_MS = 100.0  # at 1,000 taps/s offered
TARGET_RSS_MB = 600.0  # the whole node

KEY_RE = re.compile(rb'"key":"([^"]+)"')
TAP_ID_RE = re.compile(rb'"tap_id":"([^"]+)"')
RESULT_PREFIX = "_INBOX.bench"  # the terminals' result inboxes: the service answers there after its commit
TIME_RE = re.compile(rb'"time":"([^"]+)"')  # the envelope's time: one value per consumer batch (transaction)
REPO = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(f"  · {msg}", flush=True)


# ---- machine ------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).astimezone().isoformat(timespec="seconds"),
    }


# ---- helpers ------------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except psutil.Error:
        return None


def cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of each local PostgreSQL server process (not started by the bench; read only)."""
    out: dict[int, float] = {}
    for proc in psutil.process_iter(["name"]):
        if proc.info.get("name") in ("postgres", "postmaster"):
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system
    return out


def stop_process(proc: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`: only this process (by its pid)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


_made = itertools.count()  # taps made so far in this process: the n-th goes to event_of(n)
_orders: dict[int, list[str]] = {}  # the cards' order in each block of CARDS taps


def event_of(n: int) -> str:
    """The event of the n-th tap made: a card earns an event's points once, so each block of CARDS taps goes to an
    event of its own (every card once in it) and every tap is credited, as before events were once per card."""
    return EVENT if n < CARDS else f"{EVENT}-{n // CARDS}"


def event_codes(taps: int) -> list[str]:
    """The events the first `taps` taps made by make_taps go to (define them before the taps)."""
    return sorted({event_of(n) for n in range(0, taps + CARDS, CARDS)})


def make_taps(n: int, rng: random.Random, cards: list[str]) -> list[tuple[str, bytes, dict[str, str], str, str]]:
    """(subject, payload, headers, tap_id, key) for n distinct taps, built before any clock starts.

    Like a real terminal, each tap asks for its outcome on the terminal's result inbox. Each card touches each event
    once (event_of): in each block of len(cards) taps the cards come in a shuffled order."""
    now = dt.datetime.now(dt.UTC)
    out = []
    for i in range(n):
        k = next(_made)
        if k // len(cards) not in _orders:  # a block's order, kept across calls (a call may end mid-block)
            _orders[k // len(cards)] = rng.sample(cards, len(cards))
        order = _orders[k // len(cards)]
        terminal = TERMINALS[i % len(TERMINALS)]
        tap = Tap(
            tap_id=uuid.uuid4().hex,
            terminal_id=terminal,
            card_idm=order[k % len(cards)],
            event=event_of(k),
            role="volunteer" if rng.random() < VOLUNTEER_SHARE else "participant",
            tapped_at=now,
        )
        out.append((
            subjects.edge(NODE, terminal, "tap"),
            tap.model_dump_json().encode(),
            {subjects.HDR_MSG_ID: tap.key, subjects.HDR_RESULT_TO: f"{RESULT_PREFIX}.{terminal}"},
            tap.tap_id,
            tap.key,
        ))
    return out


# ---- baselines ----------------------------------------------------------------------------------------------


async def bench_jetstream(url: str, n: int) -> dict[str, Any]:
    """publish_async n messages of ~250 bytes (with a Nats-Msg-Id, like a tap) into a throwaway file stream."""
    nc = await nats.connect(url, connect_timeout=5)
    try:
        js = nc.jetstream()
        stream = "BENCH_RAW"
        await js.add_stream(StreamConfig(
            name=stream, subjects=["bench.raw"], storage=StorageType.FILE, duplicate_window=600.0,
        ))
        try:
            payload = b"x" * PAYLOAD_BYTES
            ids = [uuid.uuid4().hex for _ in range(n)]
            t0 = time.perf_counter()
            futs = [await js.publish_async("bench.raw", payload, headers={subjects.HDR_MSG_ID: i}) for i in ids]
            await asyncio.wait_for(asyncio.gather(*futs), timeout=120)
            elapsed = time.perf_counter() - t0
        finally:
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        return {"messages": n, "seconds": elapsed, "per_s": n / elapsed, "payload_bytes": PAYLOAD_BYTES}
    finally:
        await nc.close()


def raw_table() -> Table:
    md = MetaData()
    return Table(
        "bench_raw",
        md,
        Column("id", String(64), primary_key=True),
        Column("terminal_id", String(32), nullable=False),
        Column("card_idm", String(16), nullable=False),
        Column("event", String(64), nullable=False),
        Column("points", Integer, nullable=False),
        Column("tapped_at", DateTime(timezone=True), nullable=False),
    )


async def bench_inserts(url: str, schema: str | None, n: int, single_seconds: float, batch_seconds: float) -> dict:
    """Raw INSERT/s through towntip.kernel.db.create_engine: one row per transaction, and 256 per transaction."""
    engine = db.create_engine(url, schema=schema)
    table = raw_table()
    try:
        await db.ensure_schema(engine, schema)
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
        now = dt.datetime.now(dt.UTC)

        def row(i: int, tag: str) -> dict:
            return {"id": f"{tag}{i}", "terminal_id": "t1", "card_idm": f"{i % CARDS:016X}", "event": EVENT,
                    "points": 1, "tapped_at": now}

        stmt = table.insert()
        # One row per transaction (INSERT + COMMIT), bounded by n rows and `single_seconds`.
        done = 0
        t0 = time.perf_counter()
        deadline = t0 + single_seconds
        while done < n and time.perf_counter() < deadline:
            async with engine.begin() as conn:
                await conn.execute(stmt, row(done, "s"))
            done += 1
        single_elapsed = time.perf_counter() - t0
        # executemany, INSERT_BATCH rows per transaction, bounded by n rows and `batch_seconds`.
        batched = 0
        t0 = time.perf_counter()
        deadline = t0 + batch_seconds
        while batched < n and time.perf_counter() < deadline:
            rows = [row(batched + j, "b") for j in range(min(INSERT_BATCH, n - batched))]
            async with engine.begin() as conn:
                await conn.execute(stmt, rows)
            batched += len(rows)
        batch_elapsed = time.perf_counter() - t0
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.drop_all)
        return {
            "single": {"rows": done, "seconds": single_elapsed, "per_s": done / single_elapsed},
            "batch": {"rows": batched, "batch": INSERT_BATCH, "seconds": batch_elapsed,
                      "per_s": batched / batch_elapsed},
        }
    finally:
        await engine.dispose()


# ---- the node under test ------------------------------------------------------------------------------------


@dataclass
class Node:
    """nats-server + points service (+ gateway if the module exists), all started by this bench."""

    workdir: Path
    database_url: str
    schema: str
    nats: NatsServer | None = None
    points: subprocess.Popen | None = None
    instances: int = 1  # points processes sharing the tap consumer and the endpoints (the design's scaling unit)
    more_points: list[subprocess.Popen] = field(default_factory=list)
    gateway: subprocess.Popen | None = None
    gateway_note: str = ""
    logs: dict[str, Path] = field(default_factory=dict)

    def env(self, service: str) -> dict[str, str]:
        assert self.nats is not None
        env = dict(os.environ)
        env.update({
            "TOWNTIP_SERVICE": service,
            "TOWNTIP_NODE_ID": NODE,
            "TOWNTIP_NATS_URL": self.nats.url,
            "TOWNTIP_DATA_DIR": str(self.workdir / "data"),
            "TOWNTIP_DATABASE_URL": self.database_url,
            "TOWNTIP_DATABASE_SCHEMA": self.schema,
            "TOWNTIP_CARD_KEY": "00" * 32,
            "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
        })
        return env

    def spawn(self, name: str, module: str, env: dict[str, str]) -> subprocess.Popen:
        path = self.workdir / f"{name}.log"
        self.logs[name] = path
        with open(path, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", module], env=env, cwd=str(REPO), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def start_nats(self) -> None:
        self.nats = NatsServer(node_id=NODE, data_dir=self.workdir / "nats").start()

    async def start_points(self, nc: NATS, timeout: float = 60.0, events: int = 1) -> None:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        self.points = self.spawn("points", "services.points", self.env("points"))
        self.more_points = [self.spawn(f"points-{i}", "services.points", self.env("points"))
                            for i in range(2, self.instances + 1)]
        deadline = time.monotonic() + timeout
        subject = subjects.svc(NODE, "points", "events.put")
        body = EventIn(code=EVENT, name="ベンチ bench walk", participant_points=1, volunteer_points=5)
        while True:
            if self.points.poll() is not None:
                raise RuntimeError(f"points service exited with {self.points.returncode}; see {self.logs['points']}")
            try:
                await rpc.call(nc, subject, body, timeout=2.0)
                for code in event_codes(events)[1:]:  # the events of later taps (make_taps), once up
                    await rpc.call(nc, subject, body.model_copy(update={"code": code}), timeout=5.0)
                return
            except errors.ServiceError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def start_gateway(self, timeout: float = 30.0) -> None:
        spec = importlib.util.find_spec("gateway")
        if spec is None or not spec.submodule_search_locations or not any(
            (Path(p) / "__main__.py").exists() for p in spec.submodule_search_locations
        ):
            self.gateway_note = "not included: no gateway/__main__.py"
            return
        port = free_port()
        env = self.env("gateway")
        env.update({"TOWNTIP_HTTP_HOST": "127.0.0.1", "TOWNTIP_HTTP_PORT": str(port)})
        self.gateway = self.spawn("gateway", "gateway", env)
        try:
            wait_for_port("127.0.0.1", port, timeout, self.gateway)
            self.gateway_note = "included (python -m gateway, idle)"
        except (TimeoutError, RuntimeError) as exc:
            self.gateway_note = f"not included: gateway did not start ({exc}); see {self.logs['gateway']}"
            stop_process(self.gateway)
            self.gateway = None

    def pids(self) -> dict[str, int | None]:
        return {
            "nats-server": self.nats.proc.pid if self.nats and self.nats.proc else None,
            "points": self.points.pid if self.points else None,
            "gateway": self.gateway.pid if self.gateway else None,
        } | {f"points-{i}": p.pid for i, p in enumerate(self.more_points, start=2)}

    def memory(self) -> dict[str, Any]:
        each = {name: rss_mb(pid) for name, pid in self.pids().items() if pid is not None}
        return {"rss_mb": fold_instances(each), "total_mb": sum(v for v in each.values() if v is not None),
                "gateway": self.gateway_note}

    def stop(self) -> None:
        for proc in (self.gateway, self.points, *self.more_points):
            with contextlib.suppress(Exception):
                stop_process(proc)
        if self.nats is not None:
            with contextlib.suppress(Exception):
                self.nats.stop()


def fold_instances(figures: dict[str, float | None]) -> dict[str, float | None]:
    """points-2, points-3 … added into "points": the figures are the service's, however many processes."""
    out: dict[str, float | None] = {}
    for name, value in figures.items():
        key = "points" if name.startswith("points-") else name
        if key in out and out[key] is not None and value is not None:
            out[key] = out[key] + value  # type: ignore[operator]
        elif key not in out:
            out[key] = value
    return out


class Arrivals:
    """Counts TapRecorded events (matched by key; each is published by the relay after its commit), or the
    outcomes the service sends to the terminals' result inboxes right after the commit (matched by tap_id)."""

    def __init__(self, pattern: re.Pattern[bytes] = KEY_RE) -> None:
        self.pattern = pattern
        self._counted = -1
        self.first: float | None = None
        self.last: float | None = None
        self.keys: dict[bytes, float] = {}
        self.batch_of: dict[bytes, bytes] = {}
        self.repeats = 0

    async def on_msg(self, msg: Any) -> None:
        now = time.perf_counter()
        m = self.pattern.search(msg.data)
        if m is None:
            return
        key = m.group(1)
        if key in self.keys:
            self.repeats += 1
            return
        self.keys[key] = now
        t = TIME_RE.search(msg.data)
        if t is not None:
            self.batch_of[key] = t.group(1)
        if self.first is None:
            self.first = now
        self.last = now

    async def wait_for(self, keys: set[bytes], *, idle: float, limit: float) -> bool:
        """Until every key arrived; gives up after `idle` s without progress or `limit` s in all."""
        start = time.monotonic()
        progress_at, seen = start, -1
        # Count once, then only what arrived since (a full recount every 50 ms burns the CPU the node needs).
        pending = {k for k in keys if k not in self.keys}
        while True:
            pending = {k for k in pending if k not in self.keys} if len(self.keys) != self._counted else pending
            self._counted = len(self.keys)
            have = len(keys) - len(pending)
            if not pending:
                return True
            now = time.monotonic()
            if have != seen:
                seen, progress_at = have, now
            if now - progress_at > idle or now - start > limit:
                return False
            await asyncio.sleep(0.2)  # figures use arrival times, not when this loop notices


async def sustained(js: Any, arrivals: Arrivals, taps: list, node: Node, idle: float) -> dict[str, Any]:
    keys = {k.encode() for *_, k in taps}
    cpu0 = {name: cpu_seconds(pid) for name, pid in node.pids().items()}
    pg0 = postgres_cpu() if node.database_url else {}
    t0 = time.perf_counter()
    futs = [await js.publish_async(subj, payload, headers=dict(hdrs)) for subj, payload, hdrs, *_ in taps]
    await asyncio.wait_for(asyncio.gather(*futs), timeout=120)
    t_acked = time.perf_counter()
    complete = await arrivals.wait_for(keys, idle=idle, limit=max(120.0, len(taps) / 50))
    wall = time.perf_counter() - t0
    memory = node.memory()
    cpu1 = {name: cpu_seconds(pid) for name, pid in node.pids().items()}
    pg1 = postgres_cpu() if node.database_url else {}
    arrived = [arrivals.keys[k] for k in keys if k in arrivals.keys]
    last = max(arrived) if arrived else None
    elapsed = (last - t0) if last is not None else None
    n = len(taps)
    batches = len({arrivals.batch_of[k] for k in keys if k in arrivals.batch_of})
    return {
        "taps": n,
        "arrived": len(arrived),
        "consumer_batches": batches,
        "mean_batch": (len(arrived) / batches) if batches else None,
        "complete": complete,
        "publish_acked_s": t_acked - t0,
        "publish_per_s": n / (t_acked - t0),
        "seconds": elapsed,
        "per_s": (len(arrived) / elapsed) if complete and elapsed else None,
        "per_s_partial": (len(arrived) / elapsed) if elapsed else None,
        "cpu_s": fold_instances({
            name: (c1 - c0) if (c0 := cpu0.get(name)) is not None and (c1 := cpu1.get(name)) is not None else None
            for name in cpu1}) | (
            {"postgres": sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items())} if pg1 else {}),
        "cpu_wall_s": wall,
        "memory": memory,
    }


async def latency(js: Any, arrivals: Arrivals, outcomes: Arrivals, taps: list, rate: float,
                  idle: float) -> dict[str, Any]:
    """Open loop: tap i is due at t0 + i/rate; it is published then (or late, but measured from when it was due)."""
    n = len(taps)
    due: dict[bytes, float] = {}
    due_outcome: dict[bytes, float] = {}
    futs = []
    max_lag = 0.0
    stalled = 0
    t0 = time.perf_counter() + 0.05
    for i, (subj, payload, hdrs, tap_id, key) in enumerate(taps):
        t_i = t0 + i / rate
        delay = t_i - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        due[key.encode()] = t_i
        due_outcome[tap_id.encode()] = t_i
        try:
            futs.append(await js.publish_async(subj, payload, headers=dict(hdrs), wait_stall=5.0))
        except TooManyStalledMsgsError:
            stalled += 1
    send_end = time.perf_counter()
    acks = await asyncio.gather(*futs, return_exceptions=True)
    publish_errors = sum(1 for a in acks if isinstance(a, BaseException)) + stalled
    complete = await arrivals.wait_for(set(due), idle=idle, limit=n / rate + 60.0)
    await outcomes.wait_for(set(due_outcome), idle=5.0, limit=30.0)
    lat = sorted((arrivals.keys[k] - t) * 1000.0 for k, t in due.items() if k in arrivals.keys)
    olat = sorted((outcomes.keys[k] - t) * 1000.0 for k, t in due_outcome.items() if k in outcomes.keys)
    return {
        "outcomes": len(olat),
        "outcome_p50_ms": percentile(olat, 50),
        "outcome_p90_ms": percentile(olat, 90),
        "outcome_p99_ms": percentile(olat, 99),
        "outcome_max_ms": olat[-1] if olat else None,
        "offered_per_s": rate,
        "taps": n,
        "arrived": len(lat),
        "complete": complete,
        "publish_errors": publish_errors,
        "send_seconds": send_end - t0,
        "sender_max_lag_ms": max_lag * 1000.0,
        "p50_ms": percentile(lat, 50),
        "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99),
        "max_ms": lat[-1] if lat else None,
    }


async def pg_reachable(url: str) -> str | None:
    """None if PostgreSQL answers, else why not."""
    engine = db.create_engine(url)
    try:
        async with asyncio.timeout(5):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means: skip
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        await engine.dispose()


async def drop_schema(url: str, schema: str) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


async def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind} ==", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"towntip-bench-{kind}-"))
    schema = f"bench_{uuid.uuid4().hex[:10]}" if kind == "postgres" else ""
    if kind == "postgres":
        url = args.pg_url
    else:
        url = f"sqlite+aiosqlite:///{workdir}/data/points.sqlite3"
    node = Node(workdir=workdir, database_url=url if kind == "postgres" else "", schema=schema,
                instances=args.instances)
    result: dict[str, Any] = {"database": kind, "schema": schema or None}
    nc = None
    try:
        node.start_nats()
        assert node.nats is not None
        log(f"nats-server pid {node.nats.proc.pid if node.nats.proc else '?'} on {node.nats.url}")

        log(f"baseline: JetStream publish_async × {args.taps}")
        result["jetstream"] = await bench_jetstream(node.nats.url, args.taps)
        raw_url = url if kind == "postgres" else f"sqlite+aiosqlite:///{workdir}/raw/raw.sqlite3"
        log("baseline: raw INSERTs (one per transaction, then 256 per transaction)")
        result["insert"] = await bench_inserts(raw_url, schema or None, args.taps, args.insert_seconds, 60.0)

        nc = await nats.connect(node.nats.url, connect_timeout=5)
        js = nc.jetstream()
        log("starting python -m services.points")
        await node.start_points(nc, events=200 + args.taps + int(round(args.rate * args.seconds)) + CARDS)
        log(f"points service pid {node.points.pid if node.points else '?'} ready"
            + (f" (+ {len(node.more_points)} more instances)" if node.more_points else ""))
        node.start_gateway()
        log(f"gateway: {node.gateway_note}")

        arrivals = Arrivals()
        await nc.subscribe(subjects.evt(NODE, "points", "tap_recorded"), cb=arrivals.on_msg,
                           pending_msgs_limit=4 * (args.taps + int(args.rate * args.seconds)) + 1024)
        outcomes = Arrivals(TAP_ID_RE)
        await nc.subscribe(f"{RESULT_PREFIX}.>", cb=outcomes.on_msg,
                           pending_msgs_limit=4 * (args.taps + int(args.rate * args.seconds)) + 1024)
        await nc.flush()
        rng = random.Random(args.seed)
        cards = [f"{rng.getrandbits(64):016X}" for _ in range(CARDS)]

        # Warm-up (not measured): imports, prepared statements, first accounts.
        warm = make_taps(200, rng, cards)
        await sustained(js, arrivals, warm, node, idle=20.0)

        log(f"sustained: {args.taps} taps, publish_async as fast as possible")
        result["sustained"] = await sustained(js, arrivals, make_taps(args.taps, rng, cards), node, idle=30.0)

        n_lat = max(1, int(round(args.rate * args.seconds)))
        log(f"latency: {args.rate:g} taps/s offered for {args.seconds:g} s ({n_lat} taps), open loop")
        lat_taps = make_taps(n_lat, rng, cards)
        runtime.settle_heap()  # the bench's own full collections would show up as latency of the node
        await asyncio.sleep(1.0)  # let the relay settle after the sustained run
        result["latency"] = await latency(js, arrivals, outcomes, lat_taps, args.rate, idle=30.0)
        result["latency"]["memory_after"] = node.memory()
        result["repeated_events_seen"] = arrivals.repeats
    except Exception as exc:  # noqa: BLE001 - a failed database run is reported in its figures, the other goes on
        result["error"] = f"{exc.__class__.__name__}: {exc}"
        print(f"!! {kind}: {result['error']}", flush=True)
        for name, path in node.logs.items():
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").splitlines()[-15:]
                print(f"   --- last lines of {name} log ---\n   " + "\n   ".join(tail))
    finally:
        await tear_down(node, nc, kind, args.pg_url, schema, workdir)
    return result


# ---- report -------------------------------------------------------------------------------------------------


def _f(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if value is None else fmt.format(value)


def report(mach: dict[str, Any], results: list[dict[str, Any]], skipped: dict[str, str]) -> None:
    print("\n== TownTip tap benchmark ==")
    print(f"machine : {mach['cpu']}, {mach['cores']} cores, {mach['memory_gb']} GB RAM")
    print(f"python  : {mach['python']} ({mach['platform']})")
    print(f"date    : {mach['date']}")
    for kind, why in skipped.items():
        print(f"skipped : {kind} — {why}")
    ok = [r for r in results if "sustained" in r]
    for r in results:
        if "error" in r:
            print(f"error   : {r['database']} — {r['error']}")
    if not ok:
        return
    cols = [r["database"] for r in ok]
    rows: list[tuple[str, list[str], str]] = []

    def add(label: str, values: list[str], target: str = "") -> None:
        rows.append((label, values, target))

    add("JetStream publish/s (raw, 250 B)", [_f(r["jetstream"]["per_s"]) for r in ok])
    add("INSERT/s, 1 row + COMMIT each", [_f(r["insert"]["single"]["per_s"]) for r in ok])
    add(f"INSERT/s, executemany {INSERT_BATCH}/txn", [_f(r["insert"]["batch"]["per_s"]) for r in ok])
    add("taps/s sustained (end to end)",
        [_f(r["sustained"]["per_s"]) if r["sustained"]["complete"]
         else f"{_f(r['sustained']['per_s_partial'])} (incomplete)" for r in ok],
        f"≥ {TARGET_TAPS_PER_S:,.0f} on postgres")
    add("  taps arrived / sent",
        [f"{r['sustained']['arrived']:,}/{r['sustained']['taps']:,}" for r in ok])
    add("  taps/s ÷ JetStream publish/s",
        [_f(_ratio(r["sustained"]["per_s_partial"], r["jetstream"]["per_s"]), "{:.1%}") for r in ok])
    add("  taps/s ÷ INSERT/s (1 row/txn)",
        [_f(_ratio(r["sustained"]["per_s_partial"], r["insert"]["single"]["per_s"]), "{:.2f}×") for r in ok])
    add(f"  taps/s ÷ INSERT/s ({INSERT_BATCH}/txn)",
        [_f(_ratio(r["sustained"]["per_s_partial"], r["insert"]["batch"]["per_s"]), "{:.1%}") for r in ok])
    add("  consumer transactions (mean taps each)",
        [f"{r['sustained']['consumer_batches']:,} ({_f(r['sustained']['mean_batch'], '{:.0f}')})" for r in ok])
    add("  publish acked (taps/s into EDGE)", [_f(r["sustained"]["publish_per_s"]) for r in ok])
    add("  CPU s: points / nats-server / postgres",
        [f"{_f(r['sustained']['cpu_s'].get('points'), '{:.1f}')} / "
         f"{_f(r['sustained']['cpu_s'].get('nats-server'), '{:.1f}')} / "
         f"{_f(r['sustained']['cpu_s'].get('postgres'), '{:.1f}')} in "
         f"{_f(r['sustained']['cpu_wall_s'], '{:.1f}')} s" for r in ok])
    if any("latency" in r for r in ok):
        lat = [r.get("latency", {}) for r in ok]
        add("latency offered rate (taps/s)", [_f(x.get("offered_per_s")) for x in lat])
        add("  committed (terminal's outcome) p50 ms", [_f(x.get("outcome_p50_ms"), "{:.1f}") for x in lat])
        add("  committed (terminal's outcome) p90 ms", [_f(x.get("outcome_p90_ms"), "{:.1f}") for x in lat])
        add("  committed (terminal's outcome) p99 ms", [_f(x.get("outcome_p99_ms"), "{:.1f}") for x in lat],
            f"≤ {TARGET_P99_MS:.0f} at 1,000/s")
        add("  committed (terminal's outcome) max ms", [_f(x.get("outcome_max_ms"), "{:.1f}") for x in lat])
        add("  outcomes / sent", [f"{x.get('outcomes', 0):,}/{x.get('taps', 0):,}" for x in lat])
        add("  relayed (TapRecorded event) p50 ms", [_f(x.get("p50_ms"), "{:.1f}") for x in lat])
        add("  relayed (TapRecorded event) p90 ms", [_f(x.get("p90_ms"), "{:.1f}") for x in lat])
        add("  relayed (TapRecorded event) p99 ms", [_f(x.get("p99_ms"), "{:.1f}") for x in lat])
        add("  relayed (TapRecorded event) max ms", [_f(x.get("max_ms"), "{:.1f}") for x in lat])
        add("  events arrived / sent", [f"{x.get('arrived', 0):,}/{x.get('taps', 0):,}" for x in lat])
        add("  sender max lag behind schedule ms", [_f(x.get("sender_max_lag_ms"), "{:.1f}") for x in lat])
    mem = [r["sustained"]["memory"] for r in ok]
    add("RSS MB, node total (end of sustained)", [_f(m["total_mb"]) for m in mem], f"≤ {TARGET_RSS_MB:,.0f} MB")
    for name in ("nats-server", "points", "gateway"):
        add(f"  RSS MB {name}", [_f(m["rss_mb"].get(name)) for m in mem])
    width = max(len(label) for label, _, _ in rows)
    cw = [max(len(c), *(len(v[i]) for _, v, _ in rows)) for i, c in enumerate(cols)]
    print()
    print(f"{'figure':<{width}} | " + " | ".join(f"{c:>{cw[i]}}" for i, c in enumerate(cols)) + " | target")
    print("-" * (width + 3 + sum(w + 3 for w in cw) + 8))
    for label, values, target in rows:
        print(f"{label:<{width}} | " + " | ".join(f"{v:>{cw[i]}}" for i, v in enumerate(values)) + f" | {target}")
    print()
    print("RSS: the node's processes started by this bench (nats-server, python -m services.points"
          + (", python -m gateway" if any(m["rss_mb"].get("gateway") is not None for m in mem) else "")
          + f"); gateway: {mem[0]['gateway']}.")
    print("Verdict against the targets:")
    for r in ok:
        s, la, m = r["sustained"], r.get("latency", {}), r["sustained"]["memory"]
        verdicts = []
        if r["database"] == "postgres":
            verdicts.append(_verdict("taps/s", s["per_s"], TARGET_TAPS_PER_S, higher=True))
        if la.get("offered_per_s") == 1000:
            p99 = la.get("outcome_p99_ms") if la.get("outcomes") == la.get("taps") else None
            verdicts.append(_verdict("p99 ms (committed)", p99, TARGET_P99_MS, higher=False))
        verdicts.append(_verdict("RSS MB", m["total_mb"], TARGET_RSS_MB, higher=False))
        print(f"  {r['database']:<8}: " + "; ".join(verdicts))


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _verdict(name: str, value: float | None, target: float, *, higher: bool) -> str:
    if value is None:
        return f"{name} — (not measured / incomplete) FAIL"
    ok = value >= target if higher else value <= target
    return f"{name} {value:,.1f} {'≥' if higher else '≤'} {target:,.0f}? {'PASS' if ok else 'FAIL'}"


# ---- main ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.taps", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--taps", type=int, default=20_000, help="taps in the sustained run (and baseline sizes)")
    p.add_argument("--rate", type=float, default=1000.0, help="offered taps/s in the latency run")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    p.add_argument("--insert-seconds", type=float, default=10.0, help="time bound of the 1-row-per-txn baseline")
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--instances", type=int, default=1, choices=range(1, 9), metavar="N",
                   help="points service processes (1-8, default 1)")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    if args.taps < 1 or args.rate <= 0 or args.seconds <= 0:
        p.error("--taps, --rate and --seconds must be positive")
    return args


async def each_database(
    args: argparse.Namespace, run: Callable[[str, argparse.Namespace], Awaitable[dict[str, Any]]]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """`run(kind, args)` for each database `--db` asks for, in turn; PostgreSQL is skipped, with the reason, where it
    does not answer at `--pg-url`. Returns (results, {skipped kind: why}). Shared by every bench of a node."""
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    skipped: dict[str, str] = {}
    results = []
    for kind in kinds:
        if kind == "postgres":
            why = await pg_reachable(args.pg_url)
            if why is not None:
                skipped[kind] = f"PostgreSQL unreachable at {args.pg_url} ({why})"
                print(f"\n== postgres == SKIPPED: {skipped[kind]}", flush=True)
                continue
        results.append(await run(kind, args))
    return results, skipped


async def tear_down(node: Node, nc: Any, kind: str, pg_url: str, schema: str, workdir: Path) -> None:
    """After a bench's run on one database: its connection, the node's processes, its schema, its files."""
    if nc is not None:
        with contextlib.suppress(Exception):
            await nc.close()
    node.stop()
    if kind == "postgres":
        try:
            await drop_schema(pg_url, schema)
            log(f"dropped schema {schema}")
        except Exception as exc:  # noqa: BLE001
            print(f"!! could not drop schema {schema}: {exc}", flush=True)
    shutil.rmtree(workdir, ignore_errors=True)


async def amain(args: argparse.Namespace) -> int:
    mach = machine()
    results, skipped = await each_database(args, run_one)
    report(mach, results, skipped)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": mach,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "targets": {"taps_per_s_postgres": TARGET_TAPS_PER_S, "p99_ms_at_1000": TARGET_P99_MS,
                        "node_rss_mb": TARGET_RSS_MB},
            "skipped": skipped,
            "results": results,
        }, indent=2, default=str))
        print(f"figures written to {args.json}")
    return 1 if any("error" in r for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(amain(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
