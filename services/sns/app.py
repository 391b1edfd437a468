"""The sns service process: migrate, connect, serve endpoints, consume UserDeleted (this node's and its peers'),
relay its outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from nats.js.errors import NotFoundError

from services.sns import VERSION, people, privacy
from services.sns.directory_link import DirectoryLink
from services.sns.handlers import build_endpoints
from services.sns.models import bus
from services.sns.themes import ThemesOverBus
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import IdempotentConsumer
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts.sns import SERVICE
from towntip.kernel.privacy import UserDeletedHandler
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class SnsService(ServiceProcess):
    """One instance of the service. Several may run against one database: they share the work over NATS."""

    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(settings)
        self.clock = clock

    async def start(self) -> None:
        js = await self.open(MIGRATIONS)
        # identity's stream too: deleted accounts come from it (made here if identity has not started yet)
        await ensure_node_streams(js, self.node, (SERVICE, "identity"))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self.deletions = IdempotentConsumer(nc=self.connection, js=js, sessions=self.sessions, tables=bus,
                                            spec=people.consumer_spec(self.node, SERVICE),
                                            handler=UserDeletedHandler(self.node, privacy.forget),
                                            on_commit=self.relay.wake)
        self.peer_deletions = IdempotentConsumer(nc=self.connection, js=js, sessions=self.sessions, tables=bus,
                                                 spec=people.peer_consumer_spec(self.node, SERVICE),
                                                 handler=UserDeletedHandler(self.node, privacy.forget, peers=True),
                                                 on_commit=self.relay.wake)
        self.js = js
        # The directory of communities across towns (issue 20 point 6): EVT_<NODE>_SNSFED out, FED_<NODE>_SNSFED in.
        self.directory = DirectoryLink(nc=self.connection, js=js, sessions=self.sessions, node=self.node,
                                       settings=self.settings, clock=self.clock, on_commit=self.relay.wake)
        await self.directory.prepare()
        self._tasks = [
            asyncio.create_task(self.relay.run(self.stop_event), name="sns-outbox-relay"),
            asyncio.create_task(self.deletions.run(self.stop_event), name="sns-user-deleted"),
            asyncio.create_task(self._peer_deletions(), name="sns-peer-user-deleted"),
            *self.directory.tasks(self.stop_event),
        ]
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            self.connection, node=self.node, service=SERVICE, version=VERSION,
            endpoints=build_endpoints(sessions=self.sessions, node=self.node, on_commit=self.relay.wake,
                                      clock=self.clock, public_url=self.settings.public_url,
                                      themes=ThemesOverBus(self.connection, self.node)),
            description="community SNS: theme communities and their leaders, posts and comments, friendships",
        )
        log.info("sns service ready on node %s", self.node)

    async def close_extra(self) -> None:
        if getattr(self, "directory", None) is not None:
            await self.directory.close()

    async def _peer_deletions(self, every: float = 2.0) -> None:
        """Consume FED_<NODE> once it exists: the identity service makes it (and writes its sources) at its start;
        this service only reads it, so that no two services write one stream's source list."""
        stream = subjects.fed_stream(self.node)
        while not self.stop_event.is_set():
            try:
                await self.js.stream_info(stream)
                break
            except NotFoundError:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), every)
        if not self.stop_event.is_set():
            await self.peer_deletions.run(self.stop_event)

