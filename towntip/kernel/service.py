"""The life of one service process of a node, the same for every service: its own database (migrated at start),
its NATS connection, its background tasks and its nats.micro endpoints; stopped in the reverse order.

A service subclasses `ServiceProcess`, calls `open()` first in its `start()`, puts its background tasks in
`self._tasks` and its endpoints in `self.micro`, and closes anything else of its own in `close_extra()`.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.micro.service import Service
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from towntip.kernel import db, metrics, migrate
from towntip.kernel.bus.inboxes import service_inbox_prefix
from towntip.kernel.settings import ServiceSettings, nats_servers

log = logging.getLogger(__name__)


class ServiceProcess:
    service = ""  # the service's name (its subjects, schema and NATS client name)

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.node = settings.node_id
        self.stop_event = asyncio.Event()
        self.nc: NATS | None = None
        self.micro: Service | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, migrations: Path) -> JetStreamContext:
        """The database, migrated to head, and the NATS connection (reconnecting for ever). Its inboxes (request
        replies, JetStream acks and pulled messages) are `_INBOX._svc.<service>.…`: on a node's own nats-server the
        service's user may read no other inbox (towntip/node/natsauth.py)."""
        s = self.settings
        schema = s.resolved_schema()
        self.engine: AsyncEngine = db.create_engine(s.resolved_database_url(), schema=schema)
        await migrate.upgrade(self.engine, migrations, schema=schema)
        self.sessions: async_sessionmaker[AsyncSession] = db.sessionmaker(self.engine)
        self.nc = await nats.connect(
            nats_servers(s.nats_url), name=f"{self.node}.{self.service}", max_reconnect_attempts=-1,
            reconnect_time_wait=0.5, connect_timeout=5, inbox_prefix=service_inbox_prefix(self.service),
        )
        js = self.nc.jetstream()
        # What the metrics endpoint reads when scraped (towntip/kernel/metrics.py): the outbox, the dead letters.
        counted = metrics.of(self.node, self.service)
        counted.watch_outbox(self.sessions)
        counted.watch_dlq(js)
        return js

    @property
    def connection(self) -> NATS:
        """The NATS connection `open()` made (for the consumers and endpoints `start()` sets up after it)."""
        if self.nc is None:
            raise RuntimeError(f"{self.service}: open() first")
        return self.nc

    async def close_extra(self) -> None:
        """What a service opened besides its database and NATS (HTTP clients...), closed after NATS."""

    async def stop(self) -> None:
        self.stop_event.set()
        if self.micro is not None:
            await self.micro.stop()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("%s task %s ended with %r", self.service, task.get_name(), task.exception())
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.drain()
        await self.close_extra()
        await self.engine.dispose()

    async def wait_failed(self) -> None:
        """Returns when a background task has died (the process should then exit and be restarted)."""
        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
