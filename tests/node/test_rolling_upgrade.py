"""A rolling upgrade: the previous release's services (deploy/releases.toml, its code out of git, this virtualenv)
beside the current ones on one database and one bus, the schema migrated to the current head underneath them.

The order a rolling upgrade has: the previous release runs (its migrations made the schema), the first new
instance of each service starts and migrates to head (expand), both run side by side, the old ones go. The walk
goes through the old code alone on the new schema (the new instances stopped for it), then through the new code
alone on what the old wrote: a person registered and logging in at both gateways, taps credited once each, a
theme made and read. Then an old instance restarts on the new schema, as a crashed one would mid-upgrade: a
release that knows how (towntip.kernel.migrate, from this one on) runs on it; the previous one (d963c17) predates
that and refuses, which is asserted so that moving `previous` in releases.toml turns this into the real check.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import text

from bench.cluster import PG_URL, create_database, drop_database
from bench.cluster import instances_answering as answering
from bench.taps import pg_reachable
from edge.feedback.messages import Feedback
from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import Spool
from tests.support.bus import wait_for
from towntip.kernel import db
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.bus.inboxes import terminal_inbox_prefix
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import projects as pc
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.points import EventIn
from towntip.node import releases
from towntip.node.cluster import ClusterNode, Proc
from towntip.node.natsd import nats_server_binary

# Eight Python processes and a nats-server, started and stopped in turn: one at a time beside the other tests that
# start whole nodes.
pytestmark = [pytest.mark.xdist_group("supervisor"), pytest.mark.slow, pytest.mark.timeout(300)]

NODE = "upg"
SERVICES = ("identity", "points", "projects")  # the walk's; points' and projects' schemas differ from d963c17's
EVENT = "upgrade-walk"
PW = "correct horse battery"
STAFF = Actor(user_id="user-kikaku-01", global_handle=f"kikaku@{NODE}", display_name="企画 太郎", roles=("staff",))
THEME = {"title": "高齢者の移動手段の確保", "background": "郊外の団地で路線バスが減便された。",
         "target": "団地に住む75歳以上の方", "desired_outcome": "週2回以上の外出ができる", "fields": ["npo-3"],
         "company_points": "配車システム、車両と運行"}
MIGRATIONS = {"identity": "identity/migrations", "points": "services/points/migrations",
              "projects": "services/projects/migrations"}


@pytest.fixture(scope="module")
def previous_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[releases.Release, Path]:
    rel = releases.release("previous")
    why = releases.available(rel)
    if why is not None:
        pytest.skip(why)
    return rel, releases.extract(rel, tmp_path_factory.mktemp("release") / rel.short)


class Walk:
    def __init__(self, node: ClusterNode, nc: NATS, agent: TerminalAgent, told: dict[str, list[str]]) -> None:
        self.node, self.nc, self.agent, self.told = node, nc, agent, told
        self.taps: list[str] = []
        self.credited: set[str] = set()

    async def call(self, service: str, endpoint: str, payload: Any) -> Any:
        return await rpc.call(self.nc, subjects.svc(NODE, service, endpoint), payload, timeout=20)

    async def register(self, handle: str) -> None:
        await self.call(ic.SERVICE, ic.EP_USER_ADD, ic.UserAddIn(handle=handle, email=f"{handle}@example.jp",
                                                                 password=PW))

    async def login(self, gateway: Proc, handle: str) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=20) as c:
            page = await c.get("/login")
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert csrf, page.text[:300]
            r = await c.post("/login", data={"csrf": csrf.group(1), "login": handle, "password": PW})
            assert r.status_code == 303 and c.cookies.get("tt_session"), (gateway.name, r.status_code, r.text[:300])
            me = await c.get("/")
            assert me.status_code == 200, (gateway.name, me.status_code)

    async def tap(self) -> None:
        tap = await self.agent.tap(f"{len(self.taps) + 0x0123456789ABC00:016X}", debounce=False)
        assert tap is not None
        self.taps.append(tap.tap_id)
        async def credited() -> bool:
            return tap.tap_id in self.credited

        assert await wait_for(credited, timeout=30), f"tap {tap.tap_id} not credited: {self.told.get(tap.tap_id)}"

    async def theme(self, department: str) -> str:
        dept = await self.call(pc.SERVICE, pc.EP_ORG_CREATE, {"actor": STAFF.model_dump(mode="json"),
                                                              "kind": "department", "name": department})
        theme = await self.call(pc.SERVICE, pc.EP_THEME_CREATE, {"actor": STAFF.model_dump(mode="json"),
                                                                 "owner_department_id": dept["id"], **THEME})
        await self.call(pc.SERVICE, pc.EP_THEME_PUBLISH, {"actor": STAFF.model_dump(mode="json"),
                                                          "theme_id": theme["id"]})
        return str(theme["id"])

    async def read_theme(self, gateway: Proc, theme_id: str) -> None:
        got = await self.call(pc.SERVICE, pc.EP_THEME_GET, {"theme_id": theme_id})
        assert got["title"] == THEME["title"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.http_port}", timeout=20) as c:
            r = await c.get(f"/themes/{theme_id}")
        assert r.status_code == 200 and THEME["title"] in r.text, (gateway.name, r.status_code)


async def start(node: ClusterNode, nc: NATS, procs: list[Proc], expect: int) -> None:
    for p in procs:
        if not p.alive():
            p.start()

    async def ready() -> bool:
        counts = await answering(nc, SERVICES)
        dead = [p.name for p in procs if not p.alive()]
        assert not dead, f"{dead} exited: " + _tail(node, dead[0])
        return all(n == expect for n in counts.values())

    if not await wait_for(ready, timeout=120):
        pytest.fail(f"not every service has {expect} instance(s): {await answering(nc, SERVICES)}")
    for p in procs:
        if p.http_port:
            async def up(p: Proc = p) -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    async with httpx.AsyncClient(timeout=3) as c:
                        return (await c.get(f"http://127.0.0.1:{p.http_port}/healthz")).status_code == 200
                return False

            assert await wait_for(up, timeout=120), f"{p.name} not healthy: " + _tail(node, p.name)


def _tail(node: ClusterNode, name: str, lines: int = 30) -> str:
    return "\n".join(node.procs[name].log_path.read_text(errors="replace").splitlines()[-lines:])


async def _database(backend: str) -> tuple[str, str]:
    if backend == "sqlite":
        return "", ""
    why = await pg_reachable(PG_URL)
    if why is not None:
        pytest.skip(f"PostgreSQL is needed: {why}")
    return await create_database(PG_URL)


async def _heads(node: ClusterNode, database_url: str, service: str) -> set[str]:
    url = database_url or f"sqlite+aiosqlite:///{node.data_dir / f'{service}.sqlite3'}"
    engine = db.create_engine(url, schema=service if database_url else None)
    try:
        async with engine.connect() as conn:
            return {r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))}
    finally:
        await engine.dispose()


def _code_heads(service: str, root: Path) -> set[str]:
    from alembic.script import ScriptDirectory

    from towntip.kernel.migrate import alembic_config

    return set(ScriptDirectory.from_config(alembic_config(root / MIGRATIONS[service])).get_heads())


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_previous_release_beside_the_new_on_the_new_schema(
        backend: str, previous_tree: tuple[releases.Release, Path], tmp_path: Path) -> None:
    rel, old_root = previous_tree
    nats_server_binary()
    db_name, database_url = await _database(backend)
    node = ClusterNode(NODE, tmp_path / "node", database_url, services=SERVICES, servers=1, replicas=1,
                       instances=1, gateways=1, terminals=("t1",))
    nc: NATS | None = None
    agent: TerminalAgent | None = None
    try:
        node.prepare()
        await asyncio.to_thread(node.start_nats)
        nc = await nats.connect(node.operator_urls, connect_timeout=3)
        await ensure_node_streams(nc.jetstream(timeout=5), NODE, SERVICES)
        node.build(old_root, label="old")
        node.build(label="new")
        old = [p for n, p in node.procs.items() if "-old-" in n]
        new = [p for n, p in node.procs.items() if "-new-" in n]
        old_gw, new_gw = next(p for p in old if p.http_port), next(p for p in new if p.http_port)
        old_svc, new_svc = [p for p in old if not p.http_port], [p for p in new if not p.http_port]

        t0 = time.monotonic()

        def mark(what: str) -> None:
            print(f"{time.monotonic() - t0:6.1f} s  {what}")

        # 1. The previous release, as it ran before the upgrade: its migrations made the schema.
        await start(node, nc, old, expect=1)
        mark("previous release up")
        for s in ("points", "projects"):
            assert await _heads(node, database_url, s) == _code_heads(s, old_root), s
        told: dict[str, list[str]] = {}
        credited: set[str] = set()

        def feedback(fb: Feedback) -> None:
            if fb.tap_id:
                told.setdefault(fb.tap_id, []).append(fb.kind)
                if fb.kind == "credited":
                    credited.add(fb.tap_id)

        term = await nats.connect(node.terminal_urls("t1"), connect_timeout=3, inbox_prefix=terminal_inbox_prefix("t1"))
        agent = TerminalAgent(term, NODE, "t1", Spool(tmp_path / "spool.sqlite3"), EVENT, feedback=feedback,
                              heartbeat_interval=0, outcome_timeout=10.0, backoff_max=1.0)
        walk = Walk(node, nc, agent, told)
        walk.credited = credited
        await walk.call("points", "events.put", EventIn(code=EVENT, name="移行 upgrade walk", participant_points=1,
                                                       volunteer_points=5))
        await agent.start()
        await walk.register("before")
        await walk.tap()
        theme_old = await walk.theme("企画政策課")

        mark("walk before the upgrade")

        # 2. The new release starts beside it and migrates to head underneath the running old instances (expand).
        await start(node, nc, new, expect=2)
        mark("new release up beside it")
        for s in SERVICES:
            assert await _heads(node, database_url, s) == _code_heads(s, releases.ROOT), s
        changed = [s for s in SERVICES if _code_heads(s, old_root) != _code_heads(s, releases.ROOT)]
        print(f"release {rel.short} against head: schema differs for {changed or 'no service'}")

        # 3. The old code alone on the new schema (the new service instances stopped, gracefully).
        for p in new_svc:
            p.stop()
        assert await wait_for(lambda: _counts_are(nc, 1), timeout=30)
        await walk.register("during")
        await walk.login(old_gw, "before")
        await walk.login(new_gw, "during")
        await walk.tap()
        theme_during = await walk.theme("交通政策課")
        await walk.read_theme(old_gw, theme_old)

        mark("walk on the old code alone")
        # 4. The new code alone on what the old wrote (the old instances gone: the upgrade's end).
        await start(node, nc, new_svc, expect=2)
        for p in old_svc:
            p.stop()
        assert await wait_for(lambda: _counts_are(nc, 1), timeout=30)
        await walk.login(new_gw, "before")
        await walk.login(new_gw, "during")
        await walk.tap()
        await walk.read_theme(new_gw, theme_old)
        await walk.read_theme(new_gw, theme_during)

        mark("walk on the new code alone")
        # Every tap credited once, the ledger balanced.
        engine = db.create_engine(database_url or f"sqlite+aiosqlite:///{node.data_dir / 'points.sqlite3'}",
                                  schema="points" if database_url else None)
        try:
            async with engine.connect() as conn:
                rows = dict((await conn.execute(text("SELECT tap_id, count(*) FROM taps GROUP BY tap_id"))).all())
                sums = (await conn.execute(text("SELECT asset, sum(amount) FROM postings GROUP BY asset"))).all()
        finally:
            await engine.dispose()
        assert rows == {t: 1 for t in walk.taps}, rows
        assert sums and all(s == 0 for _, s in sums), sums

        # 5. An old instance that restarts on the new schema, as a crashed one would mid-upgrade.
        points_old = node.procs["points-old-1"]
        points_old.start()
        if _code_heads("points", old_root) == _code_heads("points", releases.ROOT) or _knows_newer(old_root):
            await start(node, nc, [points_old], expect=2)
        else:
            assert await asyncio.to_thread(points_old.popen.wait, 60) != 0  # type: ignore[union-attr]
            assert "Can't locate revision" in _tail(node, "points-old-1", 80)
            mark(f"release {rel.short} refuses to start on a newer schema (it predates migrate.unknown_revisions)")
    finally:
        if agent is not None:
            with contextlib.suppress(Exception):
                await agent.stop()
            with contextlib.suppress(Exception):
                if agent.nc is not None:
                    await agent.nc.close()
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
        await asyncio.to_thread(node.stop)
        if db_name:
            await drop_database(PG_URL, db_name)


async def _counts_are(nc: NATS, n: int) -> bool:
    return all(v == n for v in (await answering(nc, SERVICES)).values())


def _knows_newer(root: Path) -> bool:
    """The release runs on a database ahead of its code (towntip.kernel.migrate.unknown_revisions)."""
    return "def unknown_revisions" in (root / "towntip" / "kernel" / "migrate.py").read_text()
