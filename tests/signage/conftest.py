"""The signage service's fixture: the service (clock fixed at helpers.NOW) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest

from services.signage.app import SignageService
from tests.signage.helpers import NODE, NOW, Node
from towntip.kernel.settings import ServiceSettings


@pytest.fixture
async def node(nats_server, database, tmp_path) -> AsyncIterator[Node]:
    url, schema = database
    settings = ServiceSettings(
        service="signage",
        node_id=NODE,
        nats_url=nats_server.url,
        data_dir=str(tmp_path),
        database_url=url,
        database_schema=schema or "",
    )
    svc = SignageService(settings, clock=lambda: NOW)
    await svc.start()
    nc = await nats.connect(nats_server.url)
    try:
        yield Node(nc, svc, nats_server.url)
    finally:
        await nc.close()
        await svc.stop()
