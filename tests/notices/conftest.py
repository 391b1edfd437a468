"""The notices service's fixture: the service (on a clock the test moves) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest

from services.notices.app import NoticesService
from tests.notices.helpers import NODE, Clock, Node
from towntip.kernel.settings import ServiceSettings


def settings(nats_url: str, database: tuple[str, str | None], tmp_path: object, **more: object) -> ServiceSettings:
    url, schema = database
    return ServiceSettings(service="notices", node_id=NODE, nats_url=nats_url, data_dir=str(tmp_path),
                           database_url=url, database_schema=schema or "", districts="北|南|東", **more)


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    clock = Clock()
    # A small batch, so that a notice to a handful of people is sent in several transactions as a large one is.
    svc = NoticesService(settings(nats_server.url, database, tmp_path, notices_approval_over=3), clock=clock,
                         batch=2, send_every=0.2)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc, clock)
    finally:
        await nc.close()
        await svc.stop()
