"""The projects service process: migrate, connect, serve endpoints, relay its outbox, send its mail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from services.projects import VERSION, federation, privacy
from services.projects.handlers import build_endpoints
from services.projects.models import bus, mail
from towntip.kernel import privacy as privacy_kernel
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams, ensure_peer_sources
from towntip.kernel.contracts.projects import SERVICE
from towntip.kernel.mail import MailSender, SmtpSettings
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.trust import TrustError, TrustResolver

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class ProjectsService(ServiceProcess):
    """One instance of the service. Several may run against one database: they share the work over NATS."""

    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, smtp: SmtpSettings | None = None,
                 mail_backoff: tuple[float, ...] | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(settings)
        self.clock = clock  # now, for deadlines and briefings (a test moves it forward)
        self.smtp = smtp or SmtpSettings()
        self.mail_backoff = mail_backoff
        self._members_lock = asyncio.Lock()  # refresh_members: one at a time

    async def start(self) -> None:
        s = self.settings
        js = await self.open(MIGRATIONS)
        # identity's stream too: deleted accounts come from it (made here if identity has not started yet)
        await ensure_node_streams(js, self.node, (SERVICE, "identity"))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self.mailer = (MailSender(sessions=self.sessions, table=mail, settings=self.smtp, backoff=self.mail_backoff)
                       if self.mail_backoff else MailSender(sessions=self.sessions, table=mail, settings=self.smtp))

        def committed() -> None:
            self.relay.wake()
            self.mailer.wake()

        # Federation: the members' public projects events, sourced into FED_<node>_PROJECTS (its own stream: identity
        # updates FED_<node>'s sources at the same time) and applied once. Peers come from the trust anchor.
        self.js = js
        self.resolver = (TrustResolver.from_files(s.trust_anchor, s.trust_anchor_jwks, s.federation_cache_seconds)
                         if s.trust_anchor and s.trust_anchor_jwks else None)
        async with self.sessions() as session:
            peers = {n for n, _ in (await federation._active(session)).items()}
        await ensure_peer_sources(js, self.node, peers, SERVICE, own=True)
        self.peer_facts = federation.PeerFactsHandler(self.node)
        self.peer_consumer = IdempotentConsumer(
            nc=self.connection, js=js, sessions=self.sessions, tables=bus, on_commit=committed,
            spec=ConsumerSpec(stream=subjects.fed_service_stream(self.node, SERVICE), durable="projects-peer-facts",
                              filter_subject="evt.*.projects.>", service=SERVICE, node=self.node, batch=64),
            handler=self.peer_facts,
        )
        # A deleted person's data (issue 20 point 7): services/projects/privacy.py, on this node's UserDeleted.
        self.erasures = IdempotentConsumer(
            nc=self.connection, js=js, sessions=self.sessions, tables=bus, on_commit=committed,
            spec=privacy_kernel.consumer_spec(self.node, SERVICE, "projects-privacy"),
            handler=privacy_kernel.UserDeletedHandler(self.node, privacy.forget))
        self._tasks = [
            asyncio.create_task(self.erasures.run(self.stop_event), name="projects-privacy"),
            asyncio.create_task(self.relay.run(self.stop_event), name="projects-outbox-relay"),
            asyncio.create_task(self.mailer.run(self.stop_event), name="projects-mail-sender"),
            asyncio.create_task(self.peer_consumer.run(self.stop_event), name="projects-peer-facts"),
        ]
        if self.resolver is not None:
            self._tasks.append(asyncio.create_task(self._members_loop(), name="projects-federation-members"))
        # Registered last: answering $SRV.PING means the service is ready.
        self.micro = await start_service(
            self.connection, node=self.node, service=SERVICE, version=VERSION,
            endpoints=build_endpoints(sessions=self.sessions, node=self.node, public_url=s.public_url.rstrip("/"),
                                      on_commit=committed, clock=self.clock, anchor=s.trust_anchor.rstrip("/")),
            description="co-creation (ORG): organisations, hearings, themes and their phases, briefings, proposals, "
                        "the selection and its result, the pilot (roles, schedule, KPIs, plan, agreements), its "
                        "results and the decision, case studies, the contact form",
        )
        log.info("projects service ready on node %s", self.node)

    async def refresh_members(self) -> set[str]:
        """Ask the trust anchor for its members; record them (a node no longer listed becomes inactive: its copies
        are hidden) and source the projects events of every active peer. Returns the active peers. A member that
        is listed but cannot be resolved for a moment (its node down) stays a member; an anchor that cannot be
        reached changes nothing. One refresh at a time: the background round and an explicit call would otherwise
        race, and one that read the anchor's list before a removal could record the removed node active again
        after one that read it since."""
        async with self._members_lock:
            return await self._refresh_members()

    async def _refresh_members(self) -> set[str]:
        assert self.resolver is not None
        try:
            listed = await self.resolver.members()
        except TrustError as exc:
            log.warning("federation members: %s", exc)
            return set()
        async with self.sessions() as session:
            known = await federation.known_entities(session)
        found: dict[str, str] = {}
        for entity_id in listed:
            try:
                found[(await self.resolver.resolve(entity_id)).node] = entity_id
            except TrustError as exc:
                if entity_id.rstrip("/") in known:
                    found[known[entity_id.rstrip("/")]] = entity_id
                else:
                    log.info("federation member %s not resolved yet: %s", entity_id, exc)
        async with self.sessions() as session, session.begin():
            await federation.record_members(session, found, utcnow())
        peers = set(found) - {self.node}
        added = await ensure_peer_sources(self.js, self.node, peers, SERVICE, own=True)
        if added:
            log.info("now sourcing the projects events of %s", ", ".join(added))
        return peers

    async def _members_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                await self.refresh_members()
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("federation members refresh failed: %r", exc)
            try:
                await asyncio.wait_for(self.stop_event.wait(), self.settings.federation_refresh_seconds)
            except TimeoutError:
                pass

    async def close_extra(self) -> None:
        if self.resolver is not None:
            await self.resolver.client.aclose()
