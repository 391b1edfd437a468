"""Logging in at this node with one's home node (cross-node single sign-on), as an OpenID relying party.

The person says where home is (`name@node`). This node finds that node through the federation's trust chain,
sends the browser to its provider (client id = this node's entity id, registered there automatically through the
same trust; PKCE S256, state, nonce), and on the way back exchanges the code, checks the ID token with the keys the
trust anchor vouched for, links a local profile to `name@home` (by issuer and subject) and opens a session here.
The password never leaves the home node; while the session there lives, any other node logs the person in
without asking again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity.accounts import digest, new_secret, new_session
from identity.federation import TrustError, TrustResolver
from identity.models import federated_logins, users
from identity.regions import keep_home_tokens
from towntip.kernel.bus.envelope import new_id, utcnow
from towntip.kernel.contracts import identity as c
from towntip.kernel.trust import import_jwks

PENDING_TTL = timedelta(minutes=10)


@dataclass
class FederatedLogins:
    """Never holds a database transaction across a call to another node: that node may call back (to read this
    node's entity configuration while it registers this node as a client), and SQLite has one connection."""

    sessions: async_sessionmaker[AsyncSession]
    node: str
    entity_id: str  # this node's public base URL: its issuer, entity id and client id at other nodes
    resolver: TrustResolver | None
    client: httpx.AsyncClient
    # Called with a home node once one of its people is linked here (the service follows its profile events).
    on_peer: Callable[[str], Awaitable[None]] | None = None

    @property
    def redirect_uri(self) -> str:
        return f"{self.entity_id}/login/federated/callback"

    def _resolver(self) -> TrustResolver:
        if self.resolver is None:
            raise c.FEDERATION_NONE("this node belongs to no federation (no trust anchor configured)")
        return self.resolver

    async def start(self, data: c.FederatedStartIn) -> c.FederatedStart:
        name, _, node = data.target.rpartition("@")
        if node == self.node:
            raise c.FEDERATED_THIS_NODE("that is this node: log in here with your password / この地域のIDです")
        try:
            trusted = await self._resolver().by_node(node)
        except TrustError as exc:
            raise c.FEDERATED_UNTRUSTED(f"{node!r} is not a trusted node of this federation: {exc}") from None
        provider = trusted.provider
        if not str(provider.get("authorization_endpoint", "")).startswith(trusted.entity_id + "/"):
            raise c.FEDERATED_FOREIGN_PROVIDER(f"{node!r} names a provider outside its own site")
        state, verifier, nonce = new_secret(), secrets.token_urlsafe(64), secrets.token_urlsafe(24)
        now = utcnow()
        async with self.sessions() as session, session.begin():
            await session.execute(federated_logins.insert().values(
                state_hash=digest(state), issuer=provider["issuer"], entity_id=trusted.entity_id,
                code_verifier=verifier, nonce=nonce, return_to=data.return_to, created_at=now,
                expires_at=now + PENDING_TTL, used_at=None,
            ))
        params = {
            "response_type": "code", "client_id": self.entity_id, "redirect_uri": self.redirect_uri,
            "scope": f"openid profile {c.REGIONS_SCOPE}", "state": state, "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256",
        }
        if name:
            params["login_hint"] = name
        return c.FederatedStart(authorize_url=f"{provider['authorization_endpoint']}?{urlencode(params)}")

    async def finish(self, data: c.FederatedFinishIn) -> c.FederatedSession:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            pending = (await session.execute(
                update(federated_logins)
                .where(federated_logins.c.state_hash == digest(data.state), federated_logins.c.used_at.is_(None),
                       federated_logins.c.expires_at > now)
                .values(used_at=now)
                .returning(*federated_logins.c)
            )).first()
        if pending is None:
            raise c.FEDERATED_LINK_INVALID(
                "this login link is unknown, used or expired: start again / やり直してください")
        try:
            trusted = await self._resolver().resolve(pending.entity_id)  # still trusted now?
        except TrustError as exc:
            raise c.HOME_UNTRUSTED(f"the home node is no longer trusted: {exc}") from None
        provider = trusted.provider
        if provider.get("issuer") != pending.issuer:
            raise c.FEDERATED_ISSUER_CHANGED("the home node's issuer changed during the login")
        # RFC 9207, before the code goes anywhere: the answer must come from the provider this login was sent to,
        # else another trusted node could have this node hand it a code (and the verifier) meant for the home node
        if (data.iss or provider.get("authorization_response_iss_parameter_supported")) and data.iss != pending.issuer:
            raise c.FEDERATED_WRONG_ISSUER("the answer came from another issuer than the home node: start again "
                                    "/ 別の発行者からの応答です。やり直してください")
        try:
            r = await self.client.post(provider["token_endpoint"], data={
                "grant_type": "authorization_code", "code": data.code, "redirect_uri": self.redirect_uri,
                "client_id": self.entity_id, "code_verifier": pending.code_verifier,
            }, timeout=10)
        except httpx.HTTPError as exc:
            raise c.HOME_UNAVAILABLE(f"the home node did not answer: {exc.__class__.__name__}") from None
        if r.status_code != 200:
            raise c.FEDERATED_CODE_REFUSED(f"the home node refused the code: {_oauth_error(r)}")
        tokens = r.json()
        claims = self._check_id_token(tokens.get("id_token", ""), trusted.provider_jwks, pending)
        async with self.sessions() as session, session.begin():
            user_row = await self._link(session, claims, node=trusted.node, issuer=pending.issuer)
            sess = await new_session(session, node=self.node, row=user_row, client_ip=data.client_ip,
                                     user_agent=data.user_agent)
            # My Page here asks the home node for the person's other regions with these (scope `regions`)
            await keep_home_tokens(session, session_token=sess.session_token, user_id=user_row.id,
                                   entity_id=trusted.entity_id, tokens=tokens, now=utcnow())
        if self.on_peer is not None:
            await self.on_peer(trusted.node)
        return c.FederatedSession(session=sess, return_to=pending.return_to)

    def _check_id_token(self, token: str, jwks: dict[str, Any], pending: Any) -> dict[str, Any]:
        """`jwks`: the home node's provider keys from its verified configuration (never its federation key)."""
        if not jwks.get("keys"):
            raise c.FEDERATED_ID_TOKEN_INVALID("the home node's federation configuration publishes no provider keys "
                                      "(metadata.openid_provider.jwks; an older version: it must upgrade)")
        try:
            decoded = jwt.decode(token, import_jwks(jwks), algorithms=["RS256"])
        except (JoseError, ValueError) as exc:
            raise c.FEDERATED_ID_TOKEN_INVALID(f"the ID token does not verify with the home node's vouched keys: "
                                      f"{exc.__class__.__name__}") from None
        claims = decoded.claims
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if claims.get("iss") != pending.issuer or self.entity_id not in auds:
            raise c.FEDERATED_ID_TOKEN_INVALID("the ID token was not issued by the home node for this node")
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            raise c.FEDERATED_ID_TOKEN_INVALID("the ID token has expired")
        if claims.get("nonce") != pending.nonce:
            raise c.FEDERATED_ID_TOKEN_INVALID("the ID token's nonce does not match this login")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise c.FEDERATED_ID_TOKEN_INVALID("the ID token names no subject")
        return claims

    async def _link(self, session: AsyncSession, claims: dict[str, Any], *, node: str, issuer: str) -> Any:
        """The local profile linked to the person at their home node: made on the first visit, kept up to date."""
        handle = str(claims.get("preferred_username") or "")
        if not handle.endswith(f"@{node}") or len(handle) > 64:
            raise c.FEDERATED_ID_TOKEN_INVALID("the home node did not give a global handle of its own (name@node)")
        now = utcnow()
        values = {"display_name": str(claims.get("name") or handle)[:100],
                  "nickname": str(claims.get("nickname") or "")[:50], "updated_at": now}
        where = (users.c.home_issuer == issuer, users.c.home_sub == claims["sub"])
        row = (await session.execute(select(users).where(*where))).first()
        if row is None:
            taken = (await session.execute(select(users.c.id).where(users.c.handle == handle))).first()
            if taken is not None:
                raise c.FEDERATED_HANDLE_LINKED(f"{handle} is already linked to another person here")
            await session.execute(users.insert().values(
                id=new_id(), handle=handle, email=None, email_verified=False, password_hash="!",
                district="", interests=[], lang="ja", failed_logins=0, locked_until=None,
                password_changed_at=now, created_at=now, home_node=node, home_issuer=issuer,
                home_sub=claims["sub"], **values,
            ))
        else:
            await session.execute(update(users).where(*where).values(**values))
        return (await session.execute(select(users).where(*where))).one()


def _oauth_error(r: httpx.Response) -> str:
    try:
        body = r.json()
        return f"{body.get('error')}: {body.get('error_description', '')}"
    except ValueError:
        return f"HTTP {r.status_code}"
