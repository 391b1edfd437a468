"""Starting the parts of a node a test needs: its services, the people it needs registered with identity, and its
gateway (the portal) for those services."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS

from gateway.app import create_app
from services.points.app import PointsService
from tests.support import bus
from towntip.kernel.contracts import identity as ic
from towntip.kernel.settings import GatewaySettings, ServiceSettings

PW = "correct horse battery"  # every test person's password
CARD_KEY = "00" * 32  # the points service's card key in tests (conftest's points_service)


async def add_people(nc: NATS, node: str, people: Iterable[tuple[str, str | None, str | None]], *,
                     password: str = PW) -> dict[str, ic.User]:
    """Registers each (handle, display name, role) with identity over the bus: e-mail `handle@example.jp`, the
    display name identity's default (the handle) where it is None, the role granted where there is one. Answers
    the users by handle."""
    users = {}
    for handle, name, role in people:
        names = {"display_name": name} if name is not None else {}
        user = await bus.call(nc, ic.EP_USER_ADD, ic.UserAddIn(handle=handle, email=f"{handle}@example.jp",
                                                                password=password, **names),
                              service=ic.SERVICE, node=node)
        if role:
            user = await bus.call(nc, ic.EP_USER_GRANT, ic.RoleIn(handle=handle, role=role),
                                  service=ic.SERVICE, node=node)
        users[handle] = ic.User.model_validate(user)
    return users


@contextlib.asynccontextmanager
async def started(*services: Any) -> AsyncIterator[None]:
    """Starts each service in turn; after the block (or a failed start) stops those started, the last first."""
    running: list[Any] = []
    try:
        for service in services:
            await service.start()
            running.append(service)
        yield
    finally:
        for service in reversed(running):
            await service.stop()


def gateway_app(nats_url: str, tmp_path: Path, *, node: str, services: str, public_url: str, **settings: Any) -> Any:
    """The node's gateway (portal and HTTP API) for `services` ("identity,points"), its data under tmp_path/gw,
    patient with a loaded machine (15 s for a service's answer)."""
    return create_app(GatewaySettings(node_id=node, nats_url=nats_url, services=services, data_dir=str(tmp_path / "gw"),
                                      public_url=public_url, request_timeout=15, **settings))


@contextlib.asynccontextmanager
async def points_running(nats_url: str, tmp_path: Path, database: tuple[str, str | None] | None = None
                         ) -> AsyncIterator[PointsService]:
    """The points service of node 'testnode' (card key CARD_KEY) for the block: on `database` (conftest's (url,
    schema)), or on a SQLite file of its own."""
    url, schema = database or (f"sqlite+aiosqlite:///{tmp_path}/points.sqlite3", None)
    svc = PointsService(ServiceSettings(
        service="points", node_id="testnode", nats_url=nats_url, data_dir=str(tmp_path / "var"),
        database_url=url, database_schema=schema or "", card_key=CARD_KEY,
    ))
    async with started(svc):
        yield svc
