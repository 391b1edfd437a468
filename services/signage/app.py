"""The signage service process: migrate, connect, make the plays stream, serve the screens (sync, content,
heartbeats) and the staff's endpoints, count plays once, push changes and emergencies, relay its outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from services.signage import VERSION, plays, privacy
from services.signage.cap_feed import CapFeeds, feed_urls
from services.signage.federation_link import FederationLink
from services.signage.handlers import build_endpoints
from services.signage.models import bus
from services.signage.screen_link import Pusher, ScreenLink
from services.signage.slide_feed import Refresher
from towntip.kernel import privacy as privacy_kernel
from towntip.kernel.bus.consumer import IdempotentConsumer
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams, ensure_stream
from towntip.kernel.contracts.signage import SERVICE
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class SignageService(ServiceProcess):
    """One instance of the service. Several may run against one database: the screens' requests and the plays are
    shared over NATS queue groups and one durable consumer."""

    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(settings)
        self.clock = clock

    def _committed(self) -> None:
        self.relay.wake()
        self.link.stale()  # at once: a sync right after the commit reads what it changed
        self.pusher.wake()
        self.slides.wake()  # a new slide shows its data before it is approved

    def _slides_changed(self) -> None:
        self.link.stale()
        self.pusher.wake()

    async def start(self) -> None:
        cap_urls = feed_urls(self.settings.signage_cap_feeds)  # a bad URL stops the start before anything runs
        js = await self.open(MIGRATIONS)
        # identity's stream too: deleted accounts come from it (made here if identity has not started yet)
        await ensure_node_streams(js, self.node, (SERVICE, "identity"))
        await ensure_stream(js, plays.stream_config(self.node))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self.plays = IdempotentConsumer(
            nc=self.connection,
            js=js,
            sessions=self.sessions,
            tables=bus,
            spec=plays.consumer_spec(self.node),
            handler=plays.PlayHandler(self.node),
            on_commit=self._plays_committed,
        )
        self.federation = FederationLink(nc=self.connection, js=js, sessions=self.sessions, node=self.node,
                                         settings=self.settings, clock=self.clock, on_commit=self.relay.wake)
        await self.federation.prepare()
        self.link = ScreenLink(self.connection, node=self.node, sessions=self.sessions, clock=self.clock)
        self.pusher = Pusher(self.connection, node=self.node, sessions=self.sessions, clock=self.clock, link=self.link)
        self.slides = Refresher(
            self.connection, node=self.node, sessions=self.sessions, clock=self.clock, changed=self._slides_changed
        )
        await self.link.start()
        # A deleted person's data (issue 20 point 7): services/signage/privacy.py, on this node's UserDeleted.
        self.erasures = IdempotentConsumer(nc=self.connection, js=js, sessions=self.sessions, tables=bus,
                                           spec=privacy_kernel.consumer_spec(self.node, SERVICE, "signage-privacy"),
                                           handler=privacy_kernel.UserDeletedHandler(self.node, privacy.forget),
                                           on_commit=self.relay.wake)
        self._tasks = [
            asyncio.create_task(self.erasures.run(self.stop_event), name="signage-privacy"),
            asyncio.create_task(self.relay.run(self.stop_event), name="signage-outbox-relay"),
            asyncio.create_task(self.pusher.run(self.stop_event), name="signage-pusher"),
            asyncio.create_task(self.plays.run(self.stop_event), name="signage-plays"),
            *self.federation.tasks(self.stop_event),
            asyncio.create_task(self.slides.run(self.stop_event), name="signage-slides"),
        ]
        if cap_urls:  # the operator's CAP feeds (cap_feed.py)
            self.cap_feeds = CapFeeds(
                urls=cap_urls,
                sessions=self.sessions,
                node=self.node,
                min_severity=self.settings.signage_cap_min_severity,
                areas=tuple(a.strip() for a in self.settings.signage_cap_areas.split(",") if a.strip()),
                every=self.settings.signage_cap_every_seconds,
                clock=self.clock,
                committed=self._committed,
            )
            self._tasks.append(asyncio.create_task(self.cap_feeds.run(self.stop_event), name="signage-cap-feeds"))
        self.pusher.wake()  # what was active before a restart is pushed again (screens take a repeat as a no-op)
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            self.connection,
            node=self.node,
            service=SERVICE,
            version=VERSION,
            endpoints=build_endpoints(
                sessions=self.sessions, node=self.node, on_commit=self._committed, clock=self.clock
            ),
            description="signage: screens, their content and schedules, emergencies, proof of play",
        )
        log.info("signage service ready on node %s", self.node)

    def _plays_committed(self) -> None:
        self.relay.wake()
        self.federation.plays_committed.set()  # adopted items' plays are reported to their makers

    async def close_extra(self) -> None:
        if getattr(self, "federation", None) is not None:
            await self.federation.close()

    async def stop(self) -> None:
        if getattr(self, "link", None) is not None:
            await self.link.stop()  # no new screen requests while the rest winds down
        await super().stop()
