"""The points service process: migrate, connect, serve endpoints, consume taps, relay its outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.points import VERSION, privacy
from services.points.donations import service as donations_service
from services.points.handlers import DOMAINS
from services.points.ledger import rules as asset_rules
from services.points.people import handlers as people
from services.points.tables import bus
from services.points.taps.handlers import TapHandler
from services.points.taps.service import SERVICE
from services.points.terminals.handlers import TerminalTracker
from services.points.volunteers import handlers as volunteers
from towntip.kernel import metrics
from towntip.kernel import privacy as privacy_kernel
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.kernel.bus.endpoints import Endpoints, start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.secrets import load_or_create_secret
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.uow import UnitOfWork

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
TAP_CONSUMER = "points-taps"
# One write at a time in this process (every instance's unit of work takes it): the ledger's batches never wait on
# each other's row locks.
WRITER = asyncio.Lock()


def unit_of_work(sessions: async_sessionmaker[AsyncSession], on_commit: Callable[[], None]) -> UnitOfWork:
    """The service's transactions: one write at a time per process, a write run again if a concurrent caller took
    one of its idempotency keys first (the second run answers duplicate or conflict) or if PostgreSQL chose it as a
    deadlock or serialisation victim; the outbox relay woken after each commit."""
    return UnitOfWork(sessions, on_commit=on_commit, lock=WRITER, retry_integrity=True)


def build_endpoints(*, uow: UnitOfWork, node: str, card_key: bytes, tracker: TerminalTracker) -> Endpoints:
    """Every domain's endpoints from its table (services/points/handlers.py), all through one unit of work."""
    return Endpoints.from_domains(DOMAINS, uow=uow, context={"node": node, "card_key": card_key, "tracker": tracker})


class PointsService(ServiceProcess):
    """One instance of the service. Several may run against one database: they share the work over NATS."""

    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, tap_batch: int = 256) -> None:
        super().__init__(settings)
        self.tap_batch = tap_batch
        self.relay: OutboxRelay | None = None
        self.consumer: IdempotentConsumer | None = None

    def card_key(self) -> bytes:
        key = self.settings.card_key or load_or_create_secret(self.settings.data_dir, "card-key")
        return bytes.fromhex(key)

    async def start(self) -> None:
        js = await self.open(MIGRATIONS)
        nc = self.connection
        card_key = self.card_key()
        self.terminals = TerminalTracker(sessions=self.sessions, node=self.node)  # heartbeats, taps' arrival
        self.terminals.report_to(metrics.of(self.node, SERVICE))  # their spool lengths, when scraped
        # identity's stream too: the people directory consumes it (made here if identity has not started yet)
        # and sns's: the volunteer roster consumes its matching events
        await ensure_node_streams(js, self.node, (SERVICE, "identity", "sns"))
        self.relay = relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self.consumer = IdempotentConsumer(
            nc=nc,
            js=js,
            sessions=self.sessions,
            tables=bus,
            spec=ConsumerSpec(
                stream=subjects.edge_stream(self.node),
                durable=TAP_CONSUMER,
                filter_subject=subjects.edge_kind(self.node, "tap"),
                service=SERVICE,
                node=self.node,
                batch=self.tap_batch,
                concurrency=self.settings.consumer_concurrency,
            ),
            handler=self.terminals.track(TapHandler(node=self.node, card_key=card_key)),
            on_commit=relay.wake,
        )
        # The people directory (district of each person) from identity's events: a durable consumer of this node's
        # EVT_<NODE>_IDENTITY.
        self.people = IdempotentConsumer(nc=nc, js=js, sessions=self.sessions, tables=bus,
                                         spec=people.consumer_spec(self.node, SERVICE),
                                         handler=people.IdentityEventsHandler(self.node))
        # The volunteer roster of each event from the sns service's accepted applications (EVT_<NODE>_SNS).
        self.volunteers = IdempotentConsumer(nc=nc, js=js, sessions=self.sessions, tables=bus,
                                             spec=volunteers.consumer_spec(self.node, SERVICE),
                                             handler=volunteers.MatchingEventsHandler(self.node))
        # A deleted person's data (issue 20 point 7): services/points/privacy.py, on this node's UserDeleted.
        self.erasures = IdempotentConsumer(nc=nc, js=js, sessions=self.sessions, tables=bus,
                                           spec=privacy_kernel.consumer_spec(self.node, SERVICE, "points-privacy"),
                                           handler=privacy_kernel.UserDeletedHandler(self.node, privacy.forget),
                                           on_commit=relay.wake)
        self._tasks = [
            asyncio.create_task(self.people.run(self.stop_event), name="points-people"),
            asyncio.create_task(self.erasures.run(self.stop_event), name="points-privacy"),
            asyncio.create_task(self.volunteers.run(self.stop_event), name="points-volunteers"),
            asyncio.create_task(self.relay.run(self.stop_event), name="points-outbox-relay"),
            asyncio.create_task(self.consumer.run(self.stop_event), name="points-tap-consumer"),
            asyncio.create_task(self.terminals.run(self.stop_event), name="points-terminals"),
            asyncio.create_task(self._sweep_assets(), name="points-asset-rules"),
        ]
        await self.terminals.subscribe(nc)
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            nc, node=self.node, service=SERVICE, version=VERSION,
            endpoints=build_endpoints(uow=unit_of_work(self.sessions, relay.wake), node=self.node,
                                      card_key=card_key, tracker=self.terminals),
            description="まちづくりポイント: ledger, events, card taps",
        )
        log.info("points service ready on node %s", self.node)

    async def _sweep_assets(self, every: float = 3600.0) -> None:
        """Apply the assets' expiry and demurrage rules every hour (each entry keyed, so a run twice does nothing)."""
        while not self.stop_event.is_set():
            try:
                async with self.sessions() as s, s.begin():
                    done = await asset_rules.sweep(s, node=self.node)
                    done["donor_addresses_forgotten"] = await donations_service.forget_addresses(s, now=utcnow())
                if any(done.values()):
                    log.info("asset rules applied: %s", done)
                    if self.relay is not None:
                        self.relay.wake()
            except Exception:  # a failed sweep is retried at the next round
                log.exception("asset rules sweep failed; next try in %.0f s", every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), every)

