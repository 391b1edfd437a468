"""The projects service process: migrate, connect, serve endpoints, relay its outbox, send its mail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from nats.micro.service import Service

from services.projects import VERSION
from services.projects.handlers import build_endpoints
from services.projects.models import bus, mail
from towntip.kernel import db, migrate
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.kernel.contracts.projects import SERVICE
from towntip.kernel.mail import MailSender, SmtpSettings
from towntip.kernel.settings import ServiceSettings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class ProjectsService:
    """One instance of the service. Several may run against one database: they share the work over NATS."""

    def __init__(self, settings: ServiceSettings, *, smtp: SmtpSettings | None = None,
                 mail_backoff: tuple[float, ...] | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock  # now, for deadlines and briefings (a test moves it forward)
        self.node = settings.node_id
        self.smtp = smtp or SmtpSettings()
        self.mail_backoff = mail_backoff
        self.stop_event = asyncio.Event()
        self.nc: NATS | None = None
        self.micro: Service | None = None
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        s = self.settings
        schema = s.resolved_schema()
        self.engine = db.create_engine(s.resolved_database_url(), schema=schema)
        await migrate.upgrade(self.engine, MIGRATIONS, schema=schema)
        self.sessions = db.sessionmaker(self.engine)
        self.nc = await nats.connect(
            s.nats_url, name=f"{self.node}.projects", max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            connect_timeout=5,
        )
        js = self.nc.jetstream()
        await ensure_node_streams(js, self.node, (SERVICE,))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        extra = {"backoff": self.mail_backoff} if self.mail_backoff else {}
        self.mailer = MailSender(sessions=self.sessions, table=mail, settings=self.smtp, **extra)

        def committed() -> None:
            self.relay.wake()
            self.mailer.wake()

        self._tasks = [
            asyncio.create_task(self.relay.run(self.stop_event), name="projects-outbox-relay"),
            asyncio.create_task(self.mailer.run(self.stop_event), name="projects-mail-sender"),
        ]
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            self.nc, node=self.node, service=SERVICE, version=VERSION,
            endpoints=build_endpoints(sessions=self.sessions, node=self.node, public_url=s.public_url.rstrip("/"),
                                      on_commit=committed, clock=self.clock),
            description="co-creation (ORG): organisations, hearings, themes and their phases, briefings, proposals, "
                        "the selection and its result, the pilot (roles, schedule, KPIs, plan, agreements), its "
                        "results and the decision, case studies, the contact form",
        )
        log.info("projects service ready on node %s", self.node)

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
                    log.error("projects task %s ended with %r", task.get_name(), task.exception())
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.drain()
        await self.engine.dispose()

    async def wait_failed(self) -> None:
        """Returns when a background task has died (the process should then exit and be restarted)."""
        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
