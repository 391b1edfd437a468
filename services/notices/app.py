"""The notices service process: migrate, connect, serve endpoints, relay its outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from services.notices import VERSION
from services.notices.activity_jobs import ActivityFeature
from services.notices.handlers import build_endpoints
from services.notices.models import bus
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts.notices import SERVICE
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class NoticesService(ServiceProcess):
    """One instance of the service. Several may run against one database: they share the work over NATS."""

    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, clock: Callable[[], datetime] = utcnow,
                 activity_options: dict[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.clock = clock
        self.activity_options = activity_options or {}  # ActivityFeature's (tests: smtp, allow_local_push, ...)

    async def start(self) -> None:
        js = await self.open(MIGRATIONS)
        await ensure_node_streams(js, self.node, (SERVICE,))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self._tasks = [asyncio.create_task(self.relay.run(self.stop_event), name="notices-outbox-relay")]
        # Activity notifications, Web Push, the digest and the navi (issue 18, points 4 and 6).
        self.activity = ActivityFeature(self.settings, sessions=self.sessions, nc=self.connection, clock=self.clock,
                                        **self.activity_options)
        self._tasks += await self.activity.start(js, bus, self.stop_event, self.relay.wake)
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            self.connection, node=self.node, service=SERVICE, version=VERSION,
            endpoints=build_endpoints(sessions=self.sessions, node=self.node, on_commit=self.relay.wake,
                                      clock=self.clock, **self.activity.context()),
            description="notices and the personal inbox: life stage, targeted notices, official messages",
        )
        log.info("notices service ready on node %s", self.node)
