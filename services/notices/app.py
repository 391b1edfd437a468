"""The notices service process: migrate, connect, serve endpoints, consume identity's events (who lives here) and
bookings' and points' events (official messages), send due notices, relay its outbox."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from services.notices import VERSION, events, feeds, people, privacy, towns
from services.notices.activity_jobs import ActivityFeature
from services.notices.audiences import Audiences, AudiencesOverBus
from services.notices.fanout import BATCH, FanOut
from services.notices.feeds_fetch import FeedReader, parse_allow
from services.notices.handlers import build_endpoints
from services.notices.models import bus
from towntip.kernel import privacy as privacy_kernel
from towntip.kernel.bus.consumer import IdempotentConsumer
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts.notices import SERVICE
from towntip.kernel.contracts.notices_towns import PUBLIC
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.town import town_of
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
SOURCES = ("identity", "bookings", "points")  # the streams this service consumes (made here if not yet there)


class NoticesService(ServiceProcess):
    """One instance of the service. Several may run against one database: they share the work over NATS, and each
    batch of a notice's sending locks the notice's row."""

    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, clock: Callable[[], datetime] = utcnow,
                 audiences: Audiences | None = None, batch: int = BATCH, send_every: float = 5.0,
                 reader: FeedReader | None = None, poll_every: float | None = 30.0,
                 activity_options: dict[str, Any] | None = None, member_towns: towns.Towns | None = None) -> None:
        super().__init__(settings)
        self.clock = clock
        # Collected feeds (feeds.py): how they are fetched, and how often the poller looks for feeds due (None: no
        # loop; tests run its rounds themselves). The owner names this instance on the feeds' leases.
        self.reader = reader or FeedReader(allow=parse_allow(settings.feed_allow))
        self.poll_every = poll_every
        self.owner = f"{settings.node_id}-{secrets.token_hex(4)}"
        self._audiences = audiences  # None: sns and projects over the node's bus
        self.batch, self.send_every = batch, send_every
        self.activity_options = activity_options or {}  # ActivityFeature's (tests: smtp, allow_local_push, ...)
        self._towns = member_towns  # None: the member towns as the node's projects service knows them

    def _consumer(self, js: object, spec: object, handler: object) -> IdempotentConsumer[object]:
        return IdempotentConsumer(nc=self.connection, js=js, sessions=self.sessions, tables=bus,  # type: ignore[arg-type]
                                  spec=spec, handler=handler, on_commit=self.relay.wake)  # type: ignore[arg-type]

    async def start(self) -> None:
        js = await self.open(MIGRATIONS)
        await ensure_node_streams(js, self.node, (SERVICE, PUBLIC, *SOURCES))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        audiences = self._audiences or AudiencesOverBus(self.connection, self.node)
        self.fanout = FanOut(UnitOfWork(self.sessions, on_commit=self.relay.wake, clock=self.clock),
                             node=self.node, audiences=audiences, batch=self.batch, every=self.send_every)
        # Other towns' public notices (towns.py): the followed towns sourced into FED_<NODE>_PUBLICNOTICES (made
        # here, before its consumer), each notice applied once into its followers' inboxes.
        self.peer_sources = towns.PeerSources(js, self.sessions, self.node,
                                              every=self.settings.federation_refresh_seconds)
        await self.peer_sources.once()
        self.consumers = [
            self._consumer(js, people.consumer_spec(self.node, SERVICE), people.PeopleHandler(self.node)),
            # A deleted person's data (issue 20 point 7): services/notices/privacy.py.
            self._consumer(js, privacy_kernel.consumer_spec(self.node, SERVICE, "notices-privacy"),
                           privacy_kernel.UserDeletedHandler(self.node, privacy.forget)),
            self._consumer(js, towns.consumer_spec(self.node), towns.PeerNoticesHandler(self.node)),
            *(self._consumer(js, events.consumer_spec(self.node, SERVICE, source),
                             events.MessagesHandler(self.node, source)) for source in ("bookings", "points")),
        ]
        self._tasks = [asyncio.create_task(self.relay.run(self.stop_event), name="notices-outbox-relay"),
                       asyncio.create_task(self.fanout.run(self.stop_event), name="notices-fanout"),
                       *(asyncio.create_task(k.run(self.stop_event), name=f"notices-{k.spec.durable}")
                         for k in self.consumers),
                       asyncio.create_task(self.peer_sources.run(self.stop_event), name="notices-town-sources")]
        if self.poll_every is not None:
            self._tasks.append(asyncio.create_task(feeds.run_poller(
                self.sessions, reader=self.reader, owner=self.owner, node=self.node, clock=self.clock,
                stop=self.stop_event, every=self.poll_every, wake=self.relay.wake), name="notices-feeds-poller"))

        def committed() -> None:
            self.relay.wake()
            self.fanout.wake()  # a notice created or approved may be due now

        # Activity notifications, Web Push, the digest and the navi (issue 18, points 4 and 6).
        self.activity = ActivityFeature(self.settings, sessions=self.sessions, nc=self.connection, clock=self.clock,
                                        **self.activity_options)
        self._tasks += await self.activity.start(js, bus, self.stop_event, self.relay.wake)
        town = town_of(self.settings)
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            self.connection, node=self.node, service=SERVICE, version=VERSION,
            endpoints=build_endpoints(sessions=self.sessions, node=self.node, on_commit=committed,
                                      audiences=audiences, clock=self.clock, districts=town.districts,
                                      approval_over=self.settings.notices_approval_over, town_name=town.name_ja,
                                      reader=self.reader, owner=self.owner, peer_sources=self.peer_sources,
                                      towns=self._towns or towns.TownsOverBus(self.connection, self.node),
                                      **self.activity.context()),
            description="notices and the personal inbox: life stage, targeted notices, official messages",
        )
        log.info("notices service ready on node %s", self.node)
