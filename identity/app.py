"""The identity service process: migrate, connect, serve endpoints, relay its outbox, send its mail."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select

from identity import VERSION
from identity.accounts import SERVICE, Links
from identity.federated_login import FederatedLogins
from identity.federation import TrustResolver
from identity.handlers import build_endpoints
from identity.models import bus, mail, users
from identity.oidc import OidcService
from identity.peers import PeerProfileHandler
from identity.regions import Regions
from towntip.kernel.bus import subjects
from towntip.kernel.bus.consumer import ConsumerSpec, IdempotentConsumer
from towntip.kernel.bus.endpoints import start_service
from towntip.kernel.bus.outbox import OutboxRelay
from towntip.kernel.bus.streams import ensure_node_streams, ensure_peer_sources
from towntip.kernel.mail import MailSender, SmtpSettings
from towntip.kernel.service import ServiceProcess
from towntip.kernel.settings import ServiceSettings
from towntip.kernel.town import town_of

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def allow_plain_http_on_loopback(base_url: str) -> None:
    """authlib refuses http:// URLs (InsecureTransportError). A node on a laptop (`make run`) has no TLS: allow
    plain http only when the public URL is a loopback address, which no one else can reach."""
    parts = urlsplit(base_url)
    try:
        loopback = parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and loopback:
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    elif parts.scheme == "http":
        log.warning("public URL %s is plain http: OpenID Connect refuses it; use https", base_url)


class IdentityService(ServiceProcess):
    service = SERVICE

    def __init__(self, settings: ServiceSettings, *, smtp: SmtpSettings | None = None) -> None:
        super().__init__(settings)
        self.smtp = smtp or SmtpSettings()

    async def start(self) -> None:
        s = self.settings
        js = await self.open(MIGRATIONS)
        await ensure_node_streams(js, self.node, (SERVICE,))
        self.relay = OutboxRelay(js=js, sessions=self.sessions, tables=bus)
        self.mailer = MailSender(sessions=self.sessions, table=mail, settings=self.smtp)

        def committed() -> None:
            self.relay.wake()
            self.mailer.wake()

        base = s.public_url.rstrip("/")
        allow_plain_http_on_loopback(base)
        self.resolver = (TrustResolver.from_files(s.trust_anchor, s.trust_anchor_jwks, s.federation_cache_seconds)
                         if s.trust_anchor and s.trust_anchor_jwks else None)
        self.http = httpx.AsyncClient(timeout=10)
        self.oidc = OidcService(sessions=self.sessions, node=self.node, issuer=base, resolver=self.resolver,
                                anchor=s.trust_anchor.rstrip("/"))
        federated = FederatedLogins(sessions=self.sessions, node=self.node, entity_id=base, resolver=self.resolver,
                                    client=self.http)
        self.regions = regions = Regions(sessions=self.sessions, node=self.node, entity_id=base, resolver=self.resolver,
                          client=self.http, verify_access_token=self.oidc.verify_access_token,
                          client_of=self.oidc.store.client)
        self.oidc.on_home_logout = regions.revoke_at_home_later
        # People of other nodes known here: their home nodes' identity events are sourced into FED_<node>.
        async with self.sessions() as session:
            peers = set((await session.execute(
                select(users.c.home_node).where(users.c.home_node.is_not(None)).distinct())).scalars())
        await ensure_peer_sources(js, self.node, peers, SERVICE)
        self.peer_profiles = IdempotentConsumer(
            nc=self.connection, js=js, sessions=self.sessions, tables=bus,
            spec=ConsumerSpec(stream=subjects.fed_stream(self.node), durable="identity-peer-profiles",
                              filter_subject="evt.*.identity.>", service=SERVICE, node=self.node, batch=64),
            handler=PeerProfileHandler(self.node),
        )

        async def peer_known(peer: str) -> None:
            try:
                added = await ensure_peer_sources(js, self.node, {peer}, SERVICE)
            except Exception as exc:  # noqa: BLE001 - the login stands; the next start retries
                log.warning("could not source %s's profile events: %s", peer, exc)
                return
            if added:
                log.info("now following profile events of %s", ", ".join(added))

        federated.on_peer = peer_known
        self._tasks = [
            asyncio.create_task(self.relay.run(self.stop_event), name="identity-outbox-relay"),
            asyncio.create_task(self.mailer.run(self.stop_event), name="identity-mail-sender"),
            asyncio.create_task(self.peer_profiles.run(self.stop_event), name="identity-peer-profiles"),
        ]
        self.micro = await start_service(
            self.connection, node=self.node, service=SERVICE, version=VERSION,
            endpoints=build_endpoints(sessions=self.sessions, node=self.node, links=Links(base), oidc=self.oidc,
                                      federated=federated, regions=regions, on_commit=committed,
                                      districts=town_of(self.settings).districts),
            description="accounts, login sessions and the OpenID Connect provider of this node",
        )
        log.info("identity service ready on node %s (issuer %s)", self.node, base)

    async def close_extra(self) -> None:
        await self.http.aclose()
        if self.resolver is not None:
            await self.resolver.client.aclose()
