"""The bookings service process: migrate, connect, serve endpoints, relay its outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from services.bookings import VERSION, checkin, touches
from services.bookings.handlers import build_endpoints
from services.bookings.models import bus
from towntip.kernel.bus.consumer import IdempotentConsumer
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts.bookings import SERVICE
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class BookingsService(ServiceProcess):
    """One instance of the service. Several may run against one database: they share the work over NATS, and the
    database keeps bookings from overlapping whichever instance writes them."""

    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(settings)
        self.clock = clock

    async def start(self) -> None:
        js = await self.open(MIGRATIONS)
        await ensure_node_streams(js, self.node, (SERVICE,))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self._tasks = [asyncio.create_task(self.relay.run(self.stop_event), name="bookings-outbox-relay")]
        # Check-in by card (services/bookings/touches.py): the points service's stream (made here if points has not
        # started yet), and the no-show release (checkin.release_no_shows) every minute.
        await ensure_node_streams(js, self.node, ("points",))
        self.touches = IdempotentConsumer(nc=self.connection, js=js, sessions=self.sessions, tables=bus,
                                          spec=touches.consumer_spec(self.node, SERVICE),
                                          handler=touches.TouchHandler(self.node), on_commit=self.relay.wake)
        self._tasks += [asyncio.create_task(self.touches.run(self.stop_event), name="bookings-touches"),
                        asyncio.create_task(self._release_no_shows(), name="bookings-no-shows")]
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            self.connection, node=self.node, service=SERVICE, version=VERSION,
            endpoints=build_endpoints(sessions=self.sessions, node=self.node, on_commit=self.relay.wake,
                                      clock=self.clock),
            description="facility bookings: facilities, their availability, bookings that never overlap",
        )
        log.info("bookings service ready on node %s", self.node)

    async def _release_no_shows(self, every: float = 60.0) -> None:
        """Release no-shows every minute (services/bookings/sweeper.py, the other periodic jobs' loop, is not in this
        tree yet: at the merge this job joins it). A run twice releases nothing more."""
        while not self.stop_event.is_set():
            try:
                async with self.sessions() as s, s.begin():
                    released = await checkin.release_no_shows(s, node=self.node, now=self.clock())
                if released:
                    log.info("released %d no-show booking(s)", len(released))
                    self.relay.wake()
            except Exception:  # retried at the next round
                log.exception("no-show release failed; next try in %.0f s", every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), every)
