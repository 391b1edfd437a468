"""The points service process: migrate, connect, serve endpoints, consume taps, relay its outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from nats.micro.service import Service

from services.points import VERSION, asset_rules, people
from services.points.handlers import TapHandler, build_endpoints
from services.points.models import bus
from services.points.service import SERVICE
from services.points.terminals import TerminalTracker
from towntip.kernel import db, migrate
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.secrets import load_or_create_secret
from towntip.kernel.settings import ServiceSettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
TAP_CONSUMER = "points-taps"


class PointsService:
    """One instance of the service. Several may run against one database: they share the work over NATS."""

    def __init__(self, settings: ServiceSettings, *, tap_batch: int = 256) -> None:
        self.settings = settings
        self.node = settings.node_id
        self.tap_batch = tap_batch
        self.stop_event = asyncio.Event()
        self.nc: NATS | None = None
        self.micro: Service | None = None
        self.relay: OutboxRelay | None = None
        self.consumer: IdempotentConsumer | None = None
        self._tasks: list[asyncio.Task] = []

    def card_key(self) -> bytes:
        key = self.settings.card_key or load_or_create_secret(self.settings.data_dir, "card-key")
        return bytes.fromhex(key)

    async def start(self) -> None:
        s = self.settings
        schema = s.resolved_schema()
        self.engine = db.create_engine(s.resolved_database_url(), schema=schema)
        await migrate.upgrade(self.engine, MIGRATIONS, schema=schema)
        self.sessions = db.sessionmaker(self.engine)
        card_key = self.card_key()
        self.terminals = TerminalTracker(sessions=self.sessions, node=self.node)  # heartbeats, taps' arrival

        self.nc = await nats.connect(
            s.nats_url, name=f"{self.node}.points", max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            connect_timeout=5,
        )
        js = self.nc.jetstream()
        # identity's stream too: the people directory consumes it (made here if identity has not started yet)
        await ensure_node_streams(js, self.node, (SERVICE, "identity"))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self.consumer = IdempotentConsumer(
            nc=self.nc,
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
            on_commit=self.relay.wake,
        )
        # The people directory (district of each person) from identity's events: a durable consumer of this node's
        # EVT_<NODE>_IDENTITY.
        self.people = IdempotentConsumer(nc=self.nc, js=js, sessions=self.sessions, tables=bus,
                                         spec=people.consumer_spec(self.node, SERVICE),
                                         handler=people.IdentityEventsHandler(self.node))
        self._tasks = [
            asyncio.create_task(self.people.run(self.stop_event), name="points-people"),
            asyncio.create_task(self.relay.run(self.stop_event), name="points-outbox-relay"),
            asyncio.create_task(self.consumer.run(self.stop_event), name="points-tap-consumer"),
            asyncio.create_task(self.terminals.run(self.stop_event), name="points-terminals"),
            asyncio.create_task(self._sweep_assets(), name="points-asset-rules"),
        ]
        await self.terminals.subscribe(self.nc)
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            self.nc, node=self.node, service=SERVICE, version=VERSION,
            endpoints=self.terminals.add_endpoints(build_endpoints(
                sessions=self.sessions, node=self.node, card_key=card_key, on_commit=self.relay.wake)),
            description="まちづくりポイント: ledger, events, card taps",
        )
        log.info("points service ready on node %s", self.node)

    async def _sweep_assets(self, every: float = 3600.0) -> None:
        """Apply the assets' expiry and demurrage rules every hour (each entry keyed, so a run twice does nothing)."""
        while not self.stop_event.is_set():
            try:
                async with self.sessions() as s, s.begin():
                    done = await asset_rules.sweep(s, node=self.node)
                if any(done.values()):
                    log.info("asset rules applied: %s", done)
                    self.relay.wake()
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next round
                log.exception("asset rules sweep failed; next try in %.0f s", every)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), every)

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
                    log.error("points task %s ended with %r", task.get_name(), task.exception())
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.drain()
        await self.engine.dispose()

    async def wait_failed(self) -> None:
        """Returns when a background task has died (the process should then exit and be restarted)."""
        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
