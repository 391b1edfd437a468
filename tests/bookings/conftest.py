"""The bookings service's fixture: the service (clock fixed at helpers.NOW) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest

from services.bookings.app import BookingsService
from tests.bookings.helpers import NODE, NOW, Node
from towntip.kernel.settings import ServiceSettings


def settings(nats_url: str, database: tuple[str, str | None], tmp_path: object) -> ServiceSettings:
    url, schema = database
    return ServiceSettings(service="bookings", node_id=NODE, nats_url=nats_url, data_dir=str(tmp_path),
                           database_url=url, database_schema=schema or "")


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    svc = BookingsService(settings(nats_server.url, database, tmp_path), clock=lambda: NOW)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc)
    finally:
        await nc.close()
        await svc.stop()
