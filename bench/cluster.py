"""Fault drill of a node on a three-server NATS cluster: `python -m bench.cluster [--rounds 3] [--hold 6]`.

The node (towntip/node/cluster.py): three nats-servers in one cluster with the streams on three copies (R3),
PostgreSQL (a database made for the drill, a schema per service), two instances of every service, two gateways.
Under a steady load — taps from two terminals (the real terminal agent: ids made at the terminal, spooled, sent
over JetStream, retried), logins through the portal's form, and page views, both alternating between the two
gateways with no retry — it makes, in turn and `--rounds` times each:

  nats      kill -9 one nats-server (a different one each round), wait, start it again;
  services  kill -9 one instance of every service, wait, start them again;
  gateway   kill -9 one gateway, wait, start it again;
  postgres  end every connection of the node's database (pg_terminate_backend: what a PostgreSQL restart looks
            like to the services; the machine's server itself is shared and is not restarted).

Each fault's window runs from the kill to `--hold` seconds after the restart; the client errors in each window
are counted by kind (a tap's error: the terminal had to tell the person "queued", no outcome within 3 s). Then
the reconciliation: every tap the terminals saw acknowledged (PubAck) is recorded exactly once in the points
service's taps and journal, no tap is recorded that was not sent, and the ledger's postings sum to zero.
Everything listens on 127.0.0.1; processes, files and the database are removed at the end.

`--scenario upgrade` (issue 21 point 2): the node starts on the previous release (`previous_cluster` in
deploy/releases.toml, its code out of git, this virtualenv), and under the same load every process is replaced by
this checkout's code one at a time — each service's instances in turn, then the gateways (each first taken out of
the clients' rotation, as a load balancer would) — stopping gracefully, starting the new one and waiting until it
answers before the next. One window per process and one for the whole upgrade; the same reconciliation.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import json
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.aio.client import Client as NATS
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.taps import machine
from edge.feedback.messages import Feedback
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import Spool
from towntip.kernel import db
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.inboxes import terminal_inbox_prefix
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts.points import EventIn
from towntip.node import releases
from towntip.node.cluster import ClusterNode, Proc

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
NODE = "drill"
EVENT = "drill-walk"
TERMINALS = ("t1", "t2")
PW = "correct horse battery"
# The portal allows 10 login attempts per account and address in 5 minutes (gateway/portal/session.py): the logins
# go round this many people, one every LOGIN_EVERY seconds, each person's about every 36 s.
PEOPLE = 24
LOGIN_EVERY = 1.5
PAGES = ("/", "/events")
FAULTS = ("nats", "services", "gateway", "postgres")
SCENARIOS = ("faults", "upgrade")
DRAIN = 1.0  # seconds a gateway taken out of rotation keeps serving what it has before it is stopped


def say(line: str) -> None:
    print(f"  · {line}", flush=True)


@dataclass
class Load:
    """What the clients did: (monotonic time, kind, ok) per request or tap outcome."""

    records: list[tuple[float, str, bool]] = field(default_factory=list)
    taps: dict[str, list[str]] = field(default_factory=dict)  # terminal -> tap ids made
    made: dict[str, float] = field(default_factory=dict)  # tap id -> when it was touched (monotonic)
    settled: dict[str, float] = field(default_factory=dict)  # tap id -> seconds until its terminal heard the outcome
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Future[None]] = field(default_factory=list)  # the terminals' touching loops
    # Gateways the load balancer has taken out of rotation (a rolling upgrade drains one before replacing it).
    drained: set[str] = field(default_factory=set)

    def note(self, kind: str, ok: bool) -> None:
        self.records.append((time.monotonic(), kind, ok))

    def window(self, start: float, end: float) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for t, kind, ok in self.records:
            if start <= t < end:
                n, bad = out.get(kind, (0, 0))
                out[kind] = (n + 1, bad + (0 if ok else 1))
        return out

    def longest_wait(self, start: float, end: float) -> float | None:
        """The longest a tap touched in the window waited until its terminal heard it was credited (seconds)."""
        waits = [self.settled[t] for t, m in self.made.items() if start <= m < end and t in self.settled]
        return max(waits) if waits else None


@dataclass
class Window:
    fault: str
    detail: str
    start: float
    end: float = 0.0
    down: float | None = None  # seconds from the kill until the restarted piece answered again


# ---- the database ---------------------------------------------------------------------------------------------


async def admin_sql(pg_url: str, sql: str, **params: Any) -> list[Any]:
    engine = db.create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await conn.execute(text(sql), params)
            return list(result.fetchall()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def create_database(pg_url: str) -> tuple[str, str]:
    name = f"towntip_drill_{uuid.uuid4().hex[:10]}"
    await admin_sql(pg_url, f'CREATE DATABASE "{name}"')
    return name, make_url(pg_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(pg_url: str, name: str) -> None:
    await admin_sql(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def end_connections(pg_url: str, name: str) -> int:
    """pg_terminate_backend on every connection to the node's database (not this one): a restart, as clients see it."""
    rows = await admin_sql(pg_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = :d AND pid <> pg_backend_pid()", d=name)
    return len(rows)


# ---- the node -------------------------------------------------------------------------------------------------


async def wait_until(check: Callable[[], Any], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except Exception as exc:  # noqa: BLE001 - not ready yet
            last = exc
        await asyncio.sleep(0.3)
    raise TimeoutError(f"{what} not ready after {timeout:g} s ({last!r})")


async def instances_answering(nc: NATS, services: tuple[str, ...] | list[str],
                              window: float = 0.5) -> dict[str, int]:
    """How many instances of each service answer $SRV.PING within `window` (ping_services stops at the first)."""
    ids: dict[str, set[str]] = {s: set() for s in services}

    async def on_reply(msg: Any) -> None:
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            info = json.loads(msg.data)
            if info.get("name") in ids:
                ids[info["name"]].add(str(info.get("id")))

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        for s in services:
            await nc.publish(f"$SRV.PING.{s}", b"", reply=inbox)
        await asyncio.sleep(window)
    finally:
        await sub.unsubscribe()
    return {s: len(found) for s, found in ids.items()}


async def all_instances_answer(nc: NATS, node: ClusterNode, window: float = 0.5) -> bool:
    """Every instance of every service answers $SRV.PING."""
    counts = await instances_answering(nc, node.services, window)
    return all(n >= node.instances for n in counts.values())


async def gateway_ok(base: str) -> bool:
    async with httpx.AsyncClient(timeout=3) as c:
        return (await c.get(f"{base}/healthz")).status_code == 200


async def start_node(workdir: Path, database_url: str, services: tuple[str, ...], timeout: float,
                     root: Path | None = None) -> tuple[ClusterNode, NATS]:
    node = ClusterNode(NODE, workdir / "node", database_url, services=services, terminals=TERMINALS)
    node.prepare()
    await asyncio.to_thread(node.start_nats)
    nc = await nats.connect(node.operator_urls, name="drill-operator", max_reconnect_attempts=-1,
                            reconnect_time_wait=0.3, connect_timeout=3, error_cb=_quiet)
    js = nc.jetstream(timeout=5)
    await wait_until(lambda: _streams(js, node), "the JetStream cluster (R3 streams)", timeout)
    node.build(root)
    try:
        node.start_processes()
        await wait_until(lambda: all_instances_answer(nc, node), "every service instance", timeout)
        for base in node.gateway_urls:
            await wait_until(functools.partial(gateway_ok, base), f"gateway {base}", timeout)
    except BaseException:  # the caller never gets the node to stop: stop it here, processes and servers
        for name in node.dead():  # what a process that exited on its own said last
            lines = node.procs[name].log_path.read_text(errors="replace").splitlines()
            say(f"{name} exited during the start: " + " | ".join(lines[-3:]))
        with contextlib.suppress(Exception):
            await nc.close()
        await asyncio.to_thread(node.stop)
        raise
    return node, nc


async def _quiet(_exc: Exception) -> None:
    """A server killed by the drill: nats-py's default prints each refused reconnection's traceback."""


async def _streams(js: Any, node: ClusterNode) -> bool:
    await ensure_node_streams(js, node.node_id, node.services, patience=2.0)
    return True


async def seed(node: ClusterNode, nc: NATS) -> None:
    await rpc.call(nc, subjects.svc(NODE, "points", "events.put"),
                   EventIn(code=EVENT, name="訓練 drill walk", participant_points=1, volunteer_points=5), timeout=10)
    for i in range(PEOPLE):
        await rpc.call(nc, subjects.svc(NODE, ic.SERVICE, ic.EP_USER_ADD),
                       ic.UserAddIn(handle=_person(i), email=f"{_person(i)}@example.jp", password=PW), timeout=20)


def _person(i: int) -> str:
    return f"drill{i:02d}"


# ---- the load -------------------------------------------------------------------------------------------------


async def tap_load(node: ClusterNode, workdir: Path, load: Load, per_s: float) -> list[TerminalAgent]:
    agents = []
    for t in TERMINALS:
        holder: list[TerminalAgent] = []

        async def back(holder: list[TerminalAgent] = holder) -> None:
            for a in holder:
                await a.on_reconnected()

        nc = await nats.connect(node.terminal_urls(t), name=f"terminal {t}", max_reconnect_attempts=-1,
                                reconnect_time_wait=0.3, connect_timeout=2, reconnected_cb=back, error_cb=_quiet,
                                inbox_prefix=terminal_inbox_prefix(t))

        def told(fb: Feedback) -> None:
            if fb.kind == "credited":
                load.note("tap", True)
            elif fb.kind in ("queued", "rejected"):
                load.note("tap", False)

        agent = TerminalAgent(nc, NODE, t, Spool(workdir / f"spool-{t}.sqlite3"), EVENT, feedback=told,
                              heartbeat_interval=0, outcome_timeout=3.0, backoff_max=1.0)
        holder.append(agent)
        await agent.start()
        load.taps[t] = []
        agents.append(agent)
    rng = random.Random(7)

    async def touch(agent: TerminalAgent) -> None:
        while not load.stop.is_set():
            touched = time.monotonic()
            tap = await agent.tap(f"{rng.getrandbits(64):016X}", debounce=False)
            if tap is not None:
                load.made[tap.tap_id] = touched
                load.taps[agent.terminal_id].append(tap.tap_id)
            await asyncio.sleep(len(agents) / per_s)

    load.tasks += [asyncio.ensure_future(touch(agent)) for agent in agents]
    return agents


async def http_load(node: ClusterNode, load: Load, concurrency: int) -> None:
    bases = node.gateway_urls

    def pick(i: int) -> str:
        """What a load balancer does: round robin over the gateways in rotation."""
        live = [b for b in bases if b not in load.drained] or bases
        return live[i % len(live)]

    async def pages(k: int) -> None:
        i = k
        async with httpx.AsyncClient(timeout=5) as c:
            while not load.stop.is_set():
                i += 1
                try:
                    r = await c.get(pick(i) + PAGES[i % len(PAGES)])
                    load.note("page", r.status_code == 200)
                except httpx.HTTPError:
                    load.note("page", False)
                await asyncio.sleep(0.1)

    async def logins() -> None:
        i = 0
        while not load.stop.is_set():
            i += 1
            base, login = pick(i), _person(i % PEOPLE)
            try:
                async with httpx.AsyncClient(base_url=base, timeout=5) as c:
                    page = await c.get("/login")
                    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
                    r = await c.post("/login", data={"csrf": csrf.group(1) if csrf else "", "login": login,
                                                     "password": PW})
                    load.note("login", r.status_code == 303 and bool(c.cookies.get("tt_session")))
            except httpx.HTTPError:
                load.note("login", False)
            await asyncio.sleep(LOGIN_EVERY)

    await asyncio.gather(logins(), *(pages(k) for k in range(concurrency)))


# ---- the faults -----------------------------------------------------------------------------------------------


async def fault(kind: int | str, node: ClusterNode, nc: NATS, pg_url: str, db_name: str, round_: int,
                hold: float, timeout: float) -> Window:
    """One fault: make it, hold, undo it, wait until the node answers again, then hold once more."""
    if kind == "nats":
        i = round_ % len(node.nats)
        w = Window("nats", f"kill -9 {node.nats[i].server_name}", time.monotonic())
        node.kill_nats(i)
        await asyncio.sleep(hold)
        await asyncio.to_thread(node.restart_nats, i)
        w.down = time.monotonic() - w.start
    elif kind == "services":
        k = round_ % node.instances
        victims = [node.instances_of(s)[k] for s in node.services]
        w = Window("services", "kill -9 " + ", ".join(p.name for p in victims), time.monotonic())
        for p in victims:
            p.kill()
        await asyncio.sleep(hold)
        for p in victims:
            p.start()
        await wait_until(lambda: all_instances_answer(nc, node), "every service instance", timeout)
        w.down = time.monotonic() - w.start
    elif kind == "gateway":
        gws = [p for p in node.procs.values() if p.http_port]
        p = gws[round_ % len(gws)]
        w = Window("gateway", f"kill -9 {p.name}", time.monotonic())
        p.kill()
        await asyncio.sleep(hold)
        p.start()
        await wait_until(lambda: gateway_ok(f"http://127.0.0.1:{p.http_port}"), p.name, timeout)
        w.down = time.monotonic() - w.start
    else:
        w = Window("postgres", "", time.monotonic())
        ended = await end_connections(pg_url, db_name)
        w.detail = f"pg_terminate_backend × {ended}"
    await asyncio.sleep(hold)
    w.end = time.monotonic()
    return w


async def upgrade_step(proc: Proc, node: ClusterNode, nc: NATS, load: Load, new_root: Path, hold: float,
                       timeout: float) -> Window:
    """One process of a rolling upgrade: a gateway is first taken out of the balancer's rotation and given
    DRAIN seconds to finish what it serves; then the process is stopped gracefully (SIGTERM, kill -9 after
    cluster.STOP_GRACE), started on the new code, and waited for (every instance answers, or the gateway's
    /healthz), before the gateway goes back into rotation and the next process is replaced."""
    w = Window("upgrade", f"{proc.name} → new", time.monotonic())
    base = f"http://127.0.0.1:{proc.http_port}" if proc.http_port else ""
    if base:
        load.drained.add(base)
        await asyncio.sleep(DRAIN)
    await asyncio.to_thread(proc.replace, new_root)
    if base:
        await wait_until(functools.partial(gateway_ok, base), proc.name, timeout)
        load.drained.discard(base)
    else:
        await wait_until(lambda: all_instances_answer(nc, node), "every service instance", timeout)
    w.down = time.monotonic() - w.start
    await asyncio.sleep(hold)
    w.end = time.monotonic()
    return w


async def rolling_upgrade(node: ClusterNode, nc: NATS, load: Load, new_root: Path, hold: float,
                          timeout: float) -> list[Window]:
    """Every process replaced one at a time: each service's instances in turn, then the gateways. The windows
    of each step, then one of the whole upgrade."""
    services = [p for p in node.procs.values() if not p.http_port]
    gateways = [p for p in node.procs.values() if p.http_port]
    windows = []
    for proc in services + gateways:
        w = await upgrade_step(proc, node, nc, load, new_root, hold, timeout)
        say(f"upgrade {w.detail}: answering again after {w.down:.1f} s")
        windows.append(w)
    whole = Window("upgrade", f"all {len(windows)} processes", windows[0].start, windows[-1].end)
    return [*windows, whole]


# ---- reconciliation -------------------------------------------------------------------------------------------


async def reconcile(database_url: str, agents: list[TerminalAgent], load: Load, timeout: float) -> dict[str, Any]:
    """Once every tap is acknowledged and recorded (or `timeout`): what the terminals sent against the ledger."""
    sent = {tid for ids in load.taps.values() for tid in ids}
    engine = db.create_engine(database_url, schema="points")
    deadline = time.monotonic() + timeout
    try:
        while True:
            acked = sent - {t.tap_id for a in agents for t in a.spool.pending()}
            async with engine.connect() as conn:
                rows = (await conn.execute(text("SELECT tap_id, count(*) FROM taps GROUP BY tap_id"))).fetchall()
                journal = (await conn.execute(text("SELECT count(*) FROM journal WHERE kind = 'tap'"))).scalar_one()
                sums = (await conn.execute(text("SELECT asset, sum(amount) FROM postings GROUP BY asset"))).fetchall()
            recorded = {tid: n for tid, n in rows}
            if (acked == sent and acked <= set(recorded)) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    for a in agents:  # from the spool: a tap told "queued" gets no second feedback when it is credited later
        with contextlib.closing(sqlite3.connect(a.spool.path)) as spool:
            for tap_id, made, settled in spool.execute(
                    "SELECT tap_id, created_at, settled_at FROM taps WHERE settled_at IS NOT NULL"):
                load.settled[tap_id] = (dt.datetime.fromisoformat(settled) - dt.datetime.fromisoformat(made)
                                        ).total_seconds()
    return {
        "sent": len(sent),
        "acked": len(acked),
        "recorded": len(recorded),
        "journal_tap_entries": int(journal),
        "acked_missing": sorted(acked - set(recorded)),
        "recorded_twice": sorted(t for t, n in recorded.items() if n > 1),
        "recorded_not_sent": sorted(set(recorded) - sent),
        "asset_sums": {a: int(s) for a, s in sums},
    }


def reconciled(r: dict[str, Any]) -> bool:
    return (not r["acked_missing"] and not r["recorded_twice"] and not r["recorded_not_sent"]
            and r["journal_tap_entries"] == r["recorded"] and all(s == 0 for s in r["asset_sums"].values()))


# ---- the drill ------------------------------------------------------------------------------------------------


@dataclass
class Result:
    windows: list[Window]
    baseline: Window
    figures: list[dict[str, tuple[int, int]]] = field(default_factory=list)  # the baseline's, then each window's
    ledger: dict[str, Any] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)
    dead_logs: dict[str, str] = field(default_factory=dict)  # the last lines each dead process wrote
    load: Load = field(default_factory=Load)
    release: str = ""  # the upgrade scenario's: which release the node started on


async def drill(*, pg_url: str = PG_URL, rounds: int = 1, hold: float = 5.0, calm: float = 5.0,
                taps_per_s: float = 10.0, page_clients: int = 2, services: tuple[str, ...] = subjects.SERVICES,
                faults: tuple[str, ...] = FAULTS, timeout: float = 120.0, workdir: Path | None = None,
                scenario: str = "faults", release: str = "previous_cluster") -> Result:
    """`scenario` "faults": each of `faults` `rounds` times. "upgrade": the node starts on the release named
    in deploy/releases.toml (its code out of git) and every process is replaced with this checkout's code, one
    at a time, under the same load (raises releases.ReleaseUnavailable where the commit is not in the clone)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario: one of {SCENARIOS}")
    own = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="towntip-drill-"))
    old_root: Path | None = None
    rel_name = ""
    if scenario == "upgrade":
        rel = releases.release(release)
        if not rel.cluster:
            raise ValueError(f"release {release} ({rel.short}) does not run on a NATS cluster")
        old_root = releases.extract(rel, workdir / "release" / rel.short)
        rel_name = f"{release} {rel.short} ({rel.date})"
    db_name, database_url = await create_database(pg_url)
    node: ClusterNode | None = None
    nc: NATS | None = None
    load = Load()
    agents: list[TerminalAgent] = []
    http_task: asyncio.Future[None] | None = None
    try:
        say(f"starting the node: 3 nats-servers, 2 × {len(services)} services, 2 gateways, database {db_name}"
            + (f", on release {rel_name}" if rel_name else ""))
        t0 = time.monotonic()
        node, nc = await start_node(workdir, database_url, services, timeout, root=old_root)
        say(f"node up in {time.monotonic() - t0:.1f} s")
        await seed(node, nc)
        agents = await tap_load(node, workdir, load, taps_per_s)
        http_task = asyncio.ensure_future(http_load(node, load, page_clients))
        baseline = Window("none", "calm", time.monotonic())
        await asyncio.sleep(calm)
        baseline.end = time.monotonic()
        windows = []
        if scenario == "upgrade":
            windows = await rolling_upgrade(node, nc, load, releases.ROOT, hold, timeout)
            assert all(p.root == releases.ROOT for p in node.procs.values())
        for r in range(rounds if scenario == "faults" else 0):
            for kind in faults:
                w = await fault(kind, node, nc, pg_url, db_name, r, hold, timeout)
                say(f"round {r + 1} {w.fault}: {w.detail} ({w.end - w.start:.1f} s)")
                windows.append(w)
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(http_task, *load.tasks), timeout=30)
        result = Result(windows, baseline, load=load, release=rel_name)
        result.figures = [load.window(w.start, w.end) for w in [baseline, *windows]]
        result.ledger = await reconcile(database_url, agents, load, timeout=60)
        result.dead = node.dead()
        for name in result.dead:
            lines = node.procs[name].log_path.read_text(errors="replace").splitlines()
            result.dead_logs[name] = "\n".join(lines[-25:])
        return result
    finally:
        load.stop.set()
        if http_task is not None and not http_task.done():
            http_task.cancel()
        for a in agents:
            with contextlib.suppress(Exception):
                await a.stop()
            with contextlib.suppress(Exception):
                if a.nc is not None:
                    await a.nc.close()
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
        if node is not None:
            await asyncio.to_thread(node.stop)
        with contextlib.suppress(Exception):
            await drop_database(pg_url, db_name)
        if own:
            shutil.rmtree(workdir, ignore_errors=True)


def report(result: Result) -> str:
    lines = ["window                         | seconds | taps err/n | logins err/n | pages err/n | error rate | "
             "longest tap wait | down"]
    lines.append("-" * len(lines[0]))
    for w, f in zip([result.baseline, *result.windows], result.figures, strict=True):
        cells = []
        n_all = bad_all = 0
        for kind in ("tap", "login", "page"):
            n, bad = f.get(kind, (0, 0))
            n_all, bad_all = n_all + n, bad_all + bad
            cells.append(f"{bad:>4}/{n:<5}")
        rate = f"{bad_all / n_all:.1%}" if n_all else "—"
        name = f"{w.fault}: {w.detail}"[:30]
        wait = result.load.longest_wait(w.start, w.end)
        lines.append(f"{name:<30} | {w.end - w.start:>7.1f} | {cells[0]:>10} | {cells[1]:>12} | {cells[2]:>11} | "
                     f"{rate:>10} | {'—' if wait is None else f'{wait:.1f} s':>16} | "
                     f"{'—' if w.down is None else f'{w.down:.1f} s'}")
    r = result.ledger
    lines.append("")
    lines.append(f"taps sent {r['sent']}, acknowledged {r['acked']}, recorded {r['recorded']}, journal entries "
                 f"{r['journal_tap_entries']}; acknowledged but missing {len(r['acked_missing'])}, recorded twice "
                 f"{len(r['recorded_twice'])}, recorded but never sent {len(r['recorded_not_sent'])}; "
                 f"postings per asset sum to {r['asset_sums']}")
    lines.append(f"reconciled: {'yes' if reconciled(r) else 'NO'}; processes that died on their own: "
                 f"{', '.join(result.dead) or 'none'}")
    for name, tail in result.dead_logs.items():
        lines.append(f"--- the last lines of {name}'s log ---\n{tail}")
    return "\n".join(lines)


def _commit() -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(releases.ROOT), "describe", "--always", "--dirty"], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="times each fault is made (default 3)")
    p.add_argument("--hold", type=float, default=6.0, help="seconds a fault lasts, and after it is undone")
    p.add_argument("--calm", type=float, default=10.0, help="seconds of load before the first fault")
    p.add_argument("--taps-per-s", type=float, default=10.0)
    p.add_argument("--page-clients", type=int, default=2)
    p.add_argument("--pg-url", default=PG_URL)
    p.add_argument("--scenario", choices=SCENARIOS, default="faults",
                   help="faults: each fault --rounds times; upgrade: start on the previous release (deploy/"
                        "releases.toml) and replace every process with this code, one at a time (--hold after each)")
    p.add_argument("--release", default="previous_cluster", help="the upgrade's release, a key of releases.toml")
    p.add_argument("--services", default=",".join(subjects.SERVICES),
                   help="comma-separated services to run two instances of (default: all)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds to wait for the node, or a replaced piece, to answer (more on a starved machine)")
    args = p.parse_args(argv)
    m = machine()
    print(f"# bench.cluster --scenario {args.scenario} on {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
          f"{m['date']}, commit {_commit()}")
    result = asyncio.run(drill(pg_url=args.pg_url, rounds=args.rounds, hold=args.hold, calm=args.calm,
                               taps_per_s=args.taps_per_s, page_clients=args.page_clients, scenario=args.scenario,
                               release=args.release, timeout=args.timeout,
                               services=tuple(x for x in args.services.split(",") if x)))
    if result.release:
        print(f"# started on release {result.release}, upgraded to this checkout")
    print(report(result))
    return 0 if reconciled(result.ledger) and not result.dead else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

