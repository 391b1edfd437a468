"""Real nodes in one federation, for tests: a hub nats-server, a trust anchor and three nodes.

Each node runs its own nats-server (JetStream domain = node id, a leafnode of the hub — one account per node,
tests/support/federation_hub.py — with the node's deny lists, as `towntip node up --hub` does), its identity service,
the other services a test asks for, and its gateway served by uvicorn on its own loopback address (127.0.0.2-4, so a
browser's cookies stay apart as on three sites). The trust anchor is served by uvicorn too. `hanako` is a person of the
first node (password `PW`). On PostgreSQL every node's service gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import nats
import uvicorn

from gateway.app import create_app
from identity.app import IdentityService
from tests.support.federation_hub import SharedHub, leaf_config, start_guard, start_hub
from tests.support.http_server import serve
from towntip.anchor import TrustAnchor
from towntip.anchor.app import anchor_app
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import GatewaySettings, ServiceSettings
from towntip.node.hub import Hub, start_hierarchy
from towntip.node.natsd import NatsServer, free_port

TOWNS = ("tsurugashima", "suginami", "shibuya")
PW = "correct horse battery"
SLOW_MACHINE = 30.0  # seconds My Page waits for other regions in these tests (the default is 4; at most 30)


@dataclass
class Node:
    name: str
    base: str
    host: str
    port: int
    nats: NatsServer
    identity: IdentityService
    services: dict[str, Any] = field(default_factory=dict)  # name -> the running service (identity included)
    app: Any = None
    gateway: tuple[uvicorn.Server, asyncio.Task] | None = None

    async def stop_gateway(self) -> None:
        """The node's public site goes away (its services keep running): other nodes find nobody there."""
        if self.gateway is not None:
            server, task = self.gateway
            server.should_exit = True
            await asyncio.wait_for(task, 10)
            self.gateway = None

    async def start_gateway(self) -> None:
        self.gateway = await serve(self.app, self.host, self.port)


async def _drop_schemas(url: str, prefix: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        for (name,) in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"{prefix}%"):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def federation_of(tmp_path: Path, *, services: dict[str, Callable[[ServiceSettings], Any]] | None = None,
                        database: tuple[str, str | None] | None = None
                        ) -> AsyncIterator[tuple[TrustAnchor, dict[str, Node], Hub | SharedHub]]:
    """`services`: besides identity, {name: factory(settings)} started on every node (e.g. points, projects).
    `database`: the `database` fixture's (url, schema); None or a SQLite URL gives each service its SQLite file."""
    hub = start_hub(tmp_path, TOWNS)
    try:
        async with _nodes(tmp_path, TOWNS, lambda _town: hub, services, database) as (anchor, nodes):
            yield anchor, nodes, hub
    finally:
        hub.stop()


@contextlib.asynccontextmanager
async def hierarchy_of(tmp_path: Path, prefectures: dict[str, list[str]], *,
                       services: dict[str, Callable[[ServiceSettings], Any]] | None = None,
                       database: tuple[str, str | None] | None = None
                       ) -> AsyncIterator[tuple[TrustAnchor, dict[str, Node], Hub, dict[str, Hub]]]:
    """The same nodes under prefecture hubs and a national hub (towntip/node/hub.py, `start_hierarchy`): each
    node dials its prefecture's hub. Yields the anchor, the nodes, the national hub and the prefecture hubs."""
    national, hubs = start_hierarchy(tmp_path / "hubs", prefectures)
    pref_of = {n: p for p, ns in prefectures.items() for n in ns}
    try:
        async with _nodes(tmp_path, tuple(pref_of), lambda town: hubs[pref_of[town]], services,
                          database) as (anchor, nodes):
            yield anchor, nodes, national, hubs
    finally:
        for hub in hubs.values():
            hub.stop()
        national.stop()


@contextlib.asynccontextmanager
async def _nodes(tmp_path: Path, towns: tuple[str, ...], hub_of: Callable[[str], Hub | SharedHub],
                 services: dict[str, Callable[[ServiceSettings], Any]] | None,
                 database: tuple[str, str | None] | None) -> AsyncIterator[tuple[TrustAnchor, dict[str, Node]]]:
    servers: list[tuple[uvicorn.Server, asyncio.Task]] = []
    running: list[Any] = []
    guards: list[Any] = []
    anchor_port = free_port()
    anchor = TrustAnchor(tmp_path / "anchor", f"http://127.0.0.1:{anchor_port}")
    servers.append(await serve(anchor_app(anchor), "127.0.0.1", anchor_port))
    nodes: dict[str, Node] = {}
    pg = database if database is not None and database[1] else None
    try:
        for i, town in enumerate(towns):
            host, port = f"127.0.0.{i + 2}", free_port()
            base = f"http://{host}:{port}"
            ns = NatsServer(node_id=town, data_dir=tmp_path / town / "nats",
                            extra_config=leaf_config(town, hub_of(town))).start()  # as `towntip node up --hub` does
            guards.append(await start_guard(town, ns.url))

            def settings(service: str, town: str = town, ns: NatsServer = ns, base: str = base) -> ServiceSettings:
                db = {"database_url": pg[0], "database_schema": f"{pg[1]}_{town[:4]}_{service}"} if pg else {}
                return ServiceSettings(
                    service=service, node_id=town, nats_url=ns.url, data_dir=str(tmp_path / town), public_url=base,
                    trust_anchor=anchor.entity_id, trust_anchor_jwks=str(anchor.jwks_path),
                    federation_cache_seconds=0,  # removal by the anchor takes effect at once (default: 5 min)
                    federation_refresh_seconds=0.5, **db)

            identity = IdentityService(settings("identity"), smtp=SmtpSettings(enabled=False))
            await identity.start()
            identity.regions.resolve_timeout = SLOW_MACHINE  # see regions_wait below
            running.append(identity)
            node = Node(town, base, host, port, ns, identity, {"identity": identity})
            for name, factory in (services or {}).items():
                svc = factory(settings(name))
                await svc.start()
                running.append(svc)
                node.services[name] = svc
            node.app = create_app(GatewaySettings(
                node_id=town, nats_url=ns.url, services=",".join(node.services), data_dir=str(tmp_path / town / "gw"),
                public_url=base, request_timeout=15,
                # a busy test machine (several suites at once) may take longer than the 4 s a node waits for the
                # other regions; tests of that bound set it back (node.app.state.settings.regions_wait)
                regions_wait=SLOW_MACHINE))
            await node.start_gateway()
            # pins the node's federation key: its gateway answers by now (a busy test machine may take a while)
            async with httpx.AsyncClient(timeout=60) as client:
                await anchor.enrol(base, town, client=client)
            nodes[town] = node
        nc = await nats.connect(nodes[towns[0]].nats.url)
        try:
            await rpc.call(nc, subjects.svc(towns[0], c.SERVICE, c.EP_USER_ADD), c.UserAddIn(
                handle="hanako", display_name="山田 花子", email="hanako@example.jp", password=PW), timeout=15)
        finally:
            await nc.close()
        yield anchor, nodes
    finally:
        for node in nodes.values():
            with contextlib.suppress(Exception):
                await node.stop_gateway()
        for server, _task in servers:
            server.should_exit = True
        await asyncio.gather(*(t for _s, t in servers), return_exceptions=True)
        for svc in reversed(running):
            with contextlib.suppress(Exception):  # a test that failed with a node's server down
                await svc.stop()
        for guard in guards:
            await guard.stop()
        for node in nodes.values():
            node.nats.stop()
        if pg:
            await _drop_schemas(pg[0], f"{pg[1]}_")


class Browser:
    """Cookies per host, redirects followed one hop at a time (and recorded)."""

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=60)  # longer than My Page waits
        self.hops: list[str] = []

    async def go(self, method: str, url: str, **kw: Any) -> httpx.Response:
        r = await self.http.request(method, url, **kw)
        self.hops.append(f"{method} {url}")
        for _ in range(10):
            if r.status_code not in (302, 303):
                return r
            url = urljoin(str(r.url), r.headers["location"])
            self.hops.append(f"GET {url}")
            r = await self.http.get(url)
        raise AssertionError("too many redirects")

    async def form(self, url: str, action: str, fields: dict[str, str], form_id: str | None = None
                   ) -> httpx.Response:
        page = await self.go("GET", url)
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text).group(1)  # type: ignore[union-attr]
        nxt = re.search(r'name="next" value="([^"]*)"', page.text)
        data = {"csrf": csrf, **({"next": nxt.group(1).replace("&amp;", "&")} if nxt else {}), **fields}
        return await self.go("POST", urljoin(str(page.url), action), data=data)

    async def aclose(self) -> None:
        await self.http.aclose()
