"""The bookings service process: migrate, connect, serve endpoints, relay its outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from services.bookings import VERSION, checkin, life, privacy, touches, waitlist
from services.bookings.handlers import build_endpoints
from services.bookings.models import bus
from services.bookings.points import PointsOverBus
from services.bookings.sweeper import Sweeper
from towntip.kernel import privacy as privacy_kernel
from towntip.kernel.bus.consumer import IdempotentConsumer
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts.bookings import SERVICE
from towntip.kernel.loops import sleep_or_stop
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
OFFER_SWEEP_SECONDS = 60.0  # how often offers past their deadline are expired


class BookingsService(ServiceProcess):
    """One instance of the service. Several may run against one database: they share the work over NATS, and the
    database keeps bookings from overlapping whichever instance writes them."""

    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, clock: Callable[[], datetime] = utcnow,
                 sweep_every: float | None = 30.0) -> None:
        super().__init__(settings)
        self.clock = clock
        self.sweep_every = sweep_every  # None: no loop (tests run the sweeper's rounds themselves)

    async def start(self) -> None:
        js = await self.open(MIGRATIONS)
        # identity's stream too: deleted accounts come from it (made here if identity has not started yet)
        await ensure_node_streams(js, self.node, (SERVICE, "identity"))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self.points = PointsOverBus(self.connection, self.node)
        # The periodic jobs (deadlines, refunds; other features register theirs here), with the service's clock.
        jobs_uow = UnitOfWork(self.sessions, on_commit=self.relay.wake, clock=self.clock)
        self.sweeper = Sweeper(clock=self.clock, every=self.sweep_every or 30.0)
        self.sweeper.register("cancel_unpaid", lambda now: life.cancel_unpaid(
            uow=jobs_uow, node=self.node, points=self.points, now=now))
        self.sweeper.register("refund_cancelled", lambda now: life.refund_cancelled(
            uow=jobs_uow, node=self.node, points=self.points, now=now))
        # A deleted person's data (issue 20 point 7): services/bookings/privacy.py, on this node's UserDeleted.
        self.erasures = IdempotentConsumer(nc=self.connection, js=js, sessions=self.sessions, tables=bus,
                                           spec=privacy_kernel.consumer_spec(self.node, SERVICE, "bookings-privacy"),
                                           handler=privacy_kernel.UserDeletedHandler(self.node, privacy.forget),
                                           on_commit=self.relay.wake)
        self._tasks = [asyncio.create_task(self.relay.run(self.stop_event), name="bookings-outbox-relay"),
                       asyncio.create_task(self.erasures.run(self.stop_event), name="bookings-privacy")]
        if self.sweep_every is not None:
            self._tasks.append(asyncio.create_task(self.sweeper.run(self.stop_event), name="bookings-sweeper"))
        self._tasks.append(asyncio.create_task(self._expire_offers(), name="bookings-waitlist-offers"))
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
                                      clock=self.clock, points=self.points,
                                      open_to_other_nodes=self.settings.bookings_open_to_other_nodes),
            description="facility bookings: facilities, their availability, bookings that never overlap",
        )
        log.info("bookings service ready on node %s", self.node)

    async def _expire_offers(self) -> None:
        """The waitlist's periodic job (until services/bookings/sweeper.py's loop takes it): offers past their
        deadline expire and go to the next in line, one transaction a round, every OFFER_SWEEP_SECONDS."""
        uow = UnitOfWork(self.sessions, on_commit=self.relay.wake, clock=self.clock)
        while not self.stop_event.is_set():
            await sleep_or_stop(self.stop_event, OFFER_SWEEP_SECONDS)
            if self.stop_event.is_set():
                return
            try:
                await uow.write(lambda session, now: waitlist.expire_offers(session, node=self.node, now=now))
            except Exception:  # a passing database error: the next round tries again
                log.exception("expiring waitlist offers failed; trying again in %s s", OFFER_SWEEP_SECONDS)

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
