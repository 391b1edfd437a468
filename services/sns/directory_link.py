"""The sns service's side of the directory of communities across towns, with NATS (services/sns/directory.py holds
the logic): its own stream EVT_<NODE>_SNSFED, the member towns' streams sourced into FED_<NODE>_SNSFED and applied
once, the member towns and their public URLs from the trust anchor, and the listing of this node's communities
compared whole at start and every SYNC_SECONDS (each change of a community is announced with it, in its own
transaction: services/sns/communities.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.sns import directory
from services.sns.models import bus
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.kernel.bus.streams import ensure_node_streams, ensure_peer_sources
from towntip.kernel.contracts import sns_directory as d
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.trust import TrustError, TrustResolver

log = logging.getLogger(__name__)
CONSUMER = "sns-directory"
SYNC_SECONDS = 600.0  # the listing is compared whole this often (a community closed by a deleted account, …)


def consumer_spec(node: str) -> ConsumerSpec:
    return ConsumerSpec(stream=subjects.fed_service_stream(node, d.EVENTS), durable=CONSUMER,
                        filter_subject=f"evt.*.{d.EVENTS}.>", service=d.SERVICE, node=node, batch=64)


class DirectoryLink:
    def __init__(self, *, nc: NATS, js: JetStreamContext, sessions: async_sessionmaker[AsyncSession], node: str,
                 settings: ServiceSettings, clock: Callable[[], datetime], on_commit: Callable[[], None]) -> None:
        self.js, self.sessions, self.node, self.clock, self.on_commit = js, sessions, node, clock, on_commit
        self.settings = settings
        self.handler = directory.PeerDirectoryHandler(node)
        self.consumer = IdempotentConsumer(nc=nc, js=js, sessions=sessions, tables=bus, on_commit=on_commit,
                                           handler=self.handler, spec=consumer_spec(node))
        self.resolver = (TrustResolver.from_files(settings.trust_anchor, settings.trust_anchor_jwks,
                                                  settings.federation_cache_seconds)
                         if settings.trust_anchor and settings.trust_anchor_jwks else None)
        self._lock = asyncio.Lock()

    async def prepare(self) -> None:
        """The streams (this node's EVT_<NODE>_SNSFED, FED_<NODE>_SNSFED sourcing the towns known so far), then the
        first listing: the communities that existed before the directory are announced now, once."""
        await ensure_node_streams(self.js, self.node, (d.EVENTS,))
        async with self.sessions() as session:
            known = await directory.towns(session)
        await ensure_peer_sources(self.js, self.node, set(known), d.EVENTS, own=True)
        await self.sync()

    def tasks(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        out = [asyncio.create_task(self.consumer.run(stop), name="sns-directory-facts"),
               asyncio.create_task(self._sync_loop(stop), name="sns-directory-sync")]
        if self.resolver is not None:
            out.append(asyncio.create_task(self._members_loop(stop), name="sns-directory-members"))
        return out

    async def sync(self) -> int:
        """Announce what changed in this node's communities; the number of events announced."""
        async with self._lock:
            try:
                async with self.sessions() as session, session.begin():
                    sent = await directory.sync(session, node=self.node, public_url=self.settings.public_url,
                                                now=self.clock())
            except IntegrityError:  # another instance of the service listed the same community at the same moment
                return 0
        if sent:
            self.on_commit()
        return sent

    async def _sync_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), SYNC_SECONDS)
                return
            except TimeoutError:
                pass
            try:
                await self.sync()
            except Exception as exc:  # noqa: BLE001 - the next round announces what this one did not
                log.warning("sns directory listing failed: %r", exc)

    async def set_towns(self, found: dict[str, str]) -> list[str]:
        """Record the member towns ({node: public URL}) and source the listings of each; returns the towns newly
        sourced."""
        async with self._lock:
            found = {n: u for n, u in found.items() if n != self.node}
            async with self.sessions() as session, session.begin():
                await directory.record_towns(session, found, self.clock())
        return await ensure_peer_sources(self.js, self.node, set(found), d.EVENTS, own=True)

    async def refresh_towns(self) -> None:
        """The trust anchor's members, resolved (node id, public URL) through their signed configurations."""
        assert self.resolver is not None
        async with self.sessions() as session:
            known = await directory.towns(session)
        try:
            found = await self.resolver.member_nodes(known)
        except TrustError as exc:
            log.warning("directory member towns: %s", exc)
            return
        added = await self.set_towns(found)
        if added:
            log.info("now sourcing the community listings of %s", ", ".join(added))

    async def _members_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh_towns()
            except Exception as exc:  # noqa: BLE001 - the next round retries
                log.warning("sns directory members refresh failed: %r", exc)
            try:
                await asyncio.wait_for(stop.wait(), self.settings.federation_refresh_seconds)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self.resolver is not None:
            await self.resolver.client.aclose()
