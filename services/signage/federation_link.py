"""The signage service's side of the federation, with NATS (services/signage/federation.py holds the logic): its
own event stream EVT_<NODE>_SIGFED, the member towns' streams sourced into FED_<NODE>_SIGFED and applied once, the
member towns and their public URLs from the trust anchor, and the plays of adopted items reported to their makers
(after each commit of plays, and every REPORT_SECONDS)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.signage import federation
from services.signage.models import bus
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.kernel.bus.streams import ensure_node_streams, ensure_peer_sources
from towntip.kernel.contracts import signage_federation as f
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.trust import TrustError, TrustResolver

log = logging.getLogger(__name__)
CONSUMER = "signage-peer-facts"
REPORT_SECONDS = 60.0


class FederationLink:
    def __init__(self, *, nc: NATS, js: JetStreamContext, sessions: async_sessionmaker[AsyncSession], node: str,
                 settings: ServiceSettings, clock: Callable[[], datetime], on_commit: Callable[[], None]) -> None:
        self.js, self.sessions, self.node, self.clock, self.on_commit = js, sessions, node, clock, on_commit
        self.settings = settings
        self.handler = federation.PeerSignageHandler(node)
        self.consumer = IdempotentConsumer(
            nc=nc, js=js, sessions=sessions, tables=bus, on_commit=on_commit, handler=self.handler,
            spec=ConsumerSpec(stream=subjects.fed_service_stream(node, f.EVENTS), durable=CONSUMER,
                              filter_subject=f"evt.*.{f.EVENTS}.>", service=f.SERVICE, node=node, batch=64))
        self.resolver = (TrustResolver.from_files(settings.trust_anchor, settings.trust_anchor_jwks,
                                                  settings.federation_cache_seconds)
                         if settings.trust_anchor and settings.trust_anchor_jwks else None)
        self.plays_committed = asyncio.Event()
        self._lock = asyncio.Lock()

    async def prepare(self) -> None:
        """The streams: this node's EVT_<NODE>_SIGFED, and FED_<NODE>_SIGFED sourcing the towns known so far."""
        await ensure_node_streams(self.js, self.node, (f.EVENTS,))
        async with self.sessions() as session:
            known = await federation.peers(session)
        await ensure_peer_sources(self.js, self.node, set(known), f.EVENTS, own=True)

    def tasks(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        out = [asyncio.create_task(self.consumer.run(stop), name="signage-peer-facts"),
               asyncio.create_task(self._report_loop(stop), name="signage-plays-report")]
        if self.resolver is not None:
            out.append(asyncio.create_task(self._members_loop(stop), name="signage-federation-members"))
        return out

    async def set_peers(self, found: dict[str, str]) -> list[str]:
        """Record the member towns ({node: public URL}) and source the offers and reports of each; returns the towns
        newly sourced."""
        async with self._lock:
            found = {n: u for n, u in found.items() if n != self.node}
            async with self.sessions() as session, session.begin():
                await federation.record_peers(session, found, self.clock())
            return await ensure_peer_sources(self.js, self.node, set(found), f.EVENTS, own=True)

    async def refresh_peers(self) -> None:
        """The trust anchor's members, resolved (node id, public URL) through their signed configurations."""
        assert self.resolver is not None
        async with self.sessions() as session:
            known = await federation.peers(session)
        try:
            found = await self.resolver.member_nodes(known)
        except TrustError as exc:
            log.warning("federation members: %s", exc)
            return
        added = await self.set_peers(found)
        if added:
            log.info("now sourcing the signage offers of %s", ", ".join(added))

    async def _members_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh_peers()
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("signage federation members refresh failed: %r", exc)
            try:
                await asyncio.wait_for(stop.wait(), self.settings.federation_refresh_seconds)
            except TimeoutError:
                pass

    async def report(self) -> int:
        async with self.sessions() as session, session.begin():
            done = await federation.report(session, node=self.node, now=self.clock())
        if done.reports:
            self.on_commit()
        return done.reports

    async def _report_loop(self, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        while not stop.is_set():
            woken = asyncio.create_task(self.plays_committed.wait())
            await asyncio.wait((stopping, woken), timeout=REPORT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            self.plays_committed.clear()
            if stop.is_set():
                return
            try:
                await self.report()
            except Exception as exc:  # noqa: BLE001 - the next round reports what this one did not
                log.warning("signage plays report failed: %r", exc)

    async def close(self) -> None:
        if self.resolver is not None:
            await self.resolver.client.aclose()
