"""Shared fixtures: a real nats-server per test module or test, and real SQLite and PostgreSQL databases."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest

from services.points.app import PointsService
from tests.support.nodes import points_running
from tests.support.smtp_helpers import Recorder, Smtp
from towntip.node.natsd import NatsServer, free_port


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`--dist loadgroup` keeps the tests of one `xdist_group` on one worker by adding `@<group>` to their node ids
    on the workers. pytest-xdist 3.8 still writes the old `_nodeid` field, which pytest 9.2's structured node ids
    no longer read (pytest-dev/pytest-xdist#1386): every group was silently spread over all workers (module-scoped
    nodes and federations started once per worker, whole nodes starting three at a time). This sets the suffix
    where pytest 9.2 reads it, after xdist's own hook; where xdist's suffix took effect it does nothing."""
    if not getattr(config.option, "loadgroup", False):  # set by xdist on its workers only
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        marks = item.iter_markers("xdist_group")
        groups = {str(m.args[0] if m.args else m.kwargs.get("name", "default")) for m in marks}
        suffix = "@" + "_".join(sorted(groups))
        if groups and not item.nodeid.endswith(suffix) and hasattr(item, "_id"):
            item._id = coerce_node_id(item.nodeid + suffix)


# The whole nodes the suite starts (`towntip node up`) run one gateway process, to spare the two cores; the
# supervisor's own tests run two (tests/node/test_supervisor.py), as `make run` does on this machine.
os.environ.setdefault("TOWNTIP_GATEWAY_WORKERS", "1")
# The in-process gateways of the tests answer every visitor afresh (a test reads its change at once);
# tests/gateway/test_public_answers.py turns the visitors' cache on. (Whole nodes take no TOWNTIP_* from here.)
os.environ.setdefault("TOWNTIP_PUBLIC_CACHE_SECONDS", "0")

PG_URL = os.environ.get("TOWNTIP_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
_pg_state: dict[str, object] = {}


def postgres_available() -> str | None:
    """None if PostgreSQL answers, else the reason it does not (cached for the run)."""
    if "reason" not in _pg_state:
        import asyncpg

        async def probe() -> None:
            conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"), timeout=3)
            await conn.close()

        try:
            asyncio.run(probe())
            _pg_state["reason"] = None
        except Exception as exc:  # noqa: BLE001
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_URL}: {exc.__class__.__name__}: {exc}"
    return _pg_state["reason"]  # type: ignore[return-value]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A fresh nats-server with JetStream (domain 'testnode') on a free port, for one test."""
    server = NatsServer(node_id="testnode", data_dir=tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[nats.NATS]:
    client = await nats.connect(nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        yield client
    finally:
        await client.drain()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, schema) of an empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/test.sqlite3", None
        return
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield PG_URL, schema
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_URL.replace("postgresql+asyncpg", "postgresql"))
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()

    asyncio.run(drop())


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    """A free port for a local SMTP server and its recorder; the test calls start() (or leaves it down)."""
    server = Smtp(port=free_port(), handler=Recorder())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def points_service(nats_server: NatsServer, database: tuple[str, str | None], tmp_path: Path
                         ) -> AsyncIterator[PointsService]:
    """The points service of node 'testnode' on nats_server and `database`, its card key CARD_KEY."""
    async with points_running(nats_server.url, tmp_path, database) as svc:
        yield svc
