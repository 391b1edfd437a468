"""The node's OpenID Connect provider, built on authlib's AuthorizationServer.

The gateway receives the HTTP requests (`/.well-known/openid-configuration`, `/oauth/*`) and hands each one over
NATS as an `OidcRequest` (method, URL, the headers that matter, the form, the person's session token); this module
answers with an `OidcResponse` (status, headers, body). authlib's grant hooks are synchronous: authlib runs in a
worker thread, and its hooks call back into the event loop for the database (`Bridge`).

What it implements: discovery, JWKS (with rotation, see keys.py), the authorization code flow with PKCE (S256,
required for every client), refresh tokens (rotated on each use; a reused one revokes its family), userinfo, and
RP-initiated logout. ID tokens are JWTs signed RS256, access tokens JWTs signed ES256 (keys.py says why); access
tokens live 10 minutes, ID tokens an hour, refresh tokens 30 days, codes 60 seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, OAuth2Request, TokenMixin
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from identity import keys, regions
from identity.accounts import aware, current_session, digest, logout, new_secret
from identity.federation import TrustError, TrustResolver, entity_configuration
from identity.models import oauth_clients, oauth_codes, oauth_refresh_tokens, users
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import new_id, utcnow
from towntip.kernel.contracts import identity as c
from towntip.kernel.group_commit import GroupCommit

ACCESS_TTL = 600
ID_TOKEN_TTL = 3600
REFRESH_TTL = timedelta(days=30)
CODE_TTL = timedelta(seconds=60)
REFRESH_BATCHES_AT_ONCE = 4  # PostgreSQL: refresh transactions of one process at once (the pool has 10 + 10)
KEY_RECHECK = 10.0  # seconds between reads of the signing key by the refresh grant
FRESH_LOGIN = timedelta(seconds=120)  # prompt=login is satisfied by a login this recent
OFFLINE_ACCESS = "offline_access"  # OpenID Connect Core 11: asks for a refresh token
SCOPES = ("openid", "profile", "email", c.REGIONS_SCOPE, OFFLINE_ACCESS)
# Scopes every client gets when it asks, whatever it was registered with. offline_access: this provider gives every
# client a refresh token at each code exchange anyway (the portal and the member nodes rely on it; rotated on each
# use), so a client asking for one by this scope is granted it and told so in
# the token's scope. There is no consent screen (clients are registered by the node's administrator or are members
# trusted through the anchor's chain: the "other conditions" of Core 11), so prompt=consent is not required.
OFFERED_TO_ALL = frozenset({OFFLINE_ACCESS})
# Scopes a client gets only when it was allowed them (a member node of the federation, or an admin's grant): asked
# for by any other client, the request is refused with invalid_scope instead of the scope being dropped quietly.
GRANTED_ONLY = frozenset({c.REGIONS_SCOPE})
T = TypeVar("T")
# Set by the gateway alone, once the person answered yes on its logout question (a form with the portal's CSRF
# token): a client's own headers never reach the provider (the gateway forwards Authorization and Content-Type).
LOGOUT_CONFIRMED = "x-towntip-logout-confirmed"
Executor = AsyncSession | AsyncConnection  # what the store's *_in methods run their statements on

_signing: contextvars.ContextVar[keys.SigningKey] = contextvars.ContextVar("signing_key")


@dataclass
class Prefetched:
    """What one refresh request asks for, read beforehand by the batch that serves it (see
    OidcService._serve_refreshes): authlib then runs on the event loop and its hooks answer from here, with no
    thread and no round trip. The hooks record what authlib did with it, which decides what the batch writes."""

    clients: dict[str, Client | None]
    token_hash: str | None
    refresh: Refresh | None
    user: User | None
    asked_token: bool = False  # authlib got as far as the refresh token (a used one's family revocation stands)
    issued: tuple[dict[str, Any], OAuth2Request] | None = None


@dataclass
class RefreshItem:
    """One refresh request waiting for its batch: the client ids it names that are registered here, the
    federated clients it names (resolved through the trust chain before it joined the batch), its token's hash."""

    req: Request
    local_ids: set[str]
    federated: dict[str, Client | None]
    token_hash: str | None


_prefetched: contextvars.ContextVar[Prefetched | None] = contextvars.ContextVar("prefetched", default=None)


def _refresh_prefetched() -> Prefetched:
    pre = _prefetched.get()
    if pre is None:
        raise RuntimeError("the refresh grant runs only in OidcService._serve_refreshes")
    return pre


class Bridge:
    """Runs a coroutine on the service's event loop from authlib's worker thread and waits for it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def __call__(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)  # type: ignore[arg-type]


# ---- the models authlib asks for ------------------------------------------------------------------------------


@dataclass
class Client(ClientMixin):
    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    scope: str
    node: str = ""  # another node of the federation (its node id), "" for a client registered here

    @property
    def public(self) -> bool:
        return self.secret_hash is None

    def get_client_id(self) -> str:
        return self.client_id

    # authlib's code takes None from these two (no default URI; invalid_scope) and passes a None scope on; its
    # stubs say str
    def get_default_redirect_uri(self) -> str | None:  # type: ignore[override]  # None: see above
        return None  # redirect_uri is required in every request (OpenID Connect Core 3.1.2.1)

    def get_allowed_scope(self, scope: str) -> str | None:  # type: ignore[override]  # authlib passes str or None
        allowed = set(self.scope.split()) | OFFERED_TO_ALL
        asked = (scope or "").split()
        if any(s in GRANTED_ONLY and s not in allowed for s in asked):
            return None  # authlib answers invalid_scope
        return " ".join(s for s in asked if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, no prefixes or wildcards

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(digest(client_secret), self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint != "token":
            return True
        return method == "none" if self.public else method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class User:
    id: str
    handle: str
    node: str
    display_name: str
    nickname: str
    email: str
    email_verified: bool
    lang: str
    auth_time: datetime | None = None

    def get_user_id(self) -> str:
        return self.id


@dataclass
class Code(AuthorizationCodeMixin):
    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: datetime

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


@dataclass
class Refresh(TokenMixin):
    token_hash: str
    family_id: str
    client_id: str
    user_id: str
    scope: str
    auth_time: datetime
    expires_at: datetime

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int((self.expires_at - utcnow()).total_seconds())

    def is_expired(self) -> bool:
        return self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        return False  # revoked and used tokens are never returned by the store

    def get_user(self) -> str:
        return self.user_id

    def get_client(self) -> str:  # type: ignore[override]
        return self.client_id


# ---- storage (async, on the event loop) -----------------------------------------------------------------------


@dataclass
class Store:
    sessions: async_sessionmaker[AsyncSession]
    node: str
    resolver: TrustResolver | None = None

    async def client(self, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        if is_federated(client_id):
            return await self.federated_client(client_id)
        async with self.sessions() as s:
            return await self.local_client(s, client_id)

    @staticmethod
    async def local_client(s: Executor, client_id: str) -> Client | None:
        """A client registered on this node (not a federated one), read in the caller's session or connection."""
        row = (await s.execute(_CLIENT, {"client_id": client_id})).first()
        return None if row is None else _client(row)

    async def federated_client(self, entity_id: str) -> Client | None:
        """Another node of the federation, registered automatically: its entity id is its client id, and its
        redirect URIs are those of its relying-party metadata, trusted only through the anchor's chain. It is a
        public client: it proves itself by PKCE and by where the code goes."""
        if self.resolver is None:
            return None
        try:
            trusted = await self.resolver.resolve(entity_id)
        except TrustError:
            return None
        rp = trusted.relying_party
        uris = [u for u in rp.get("redirect_uris") or [] if isinstance(u, str) and u.startswith(entity_id + "/")]
        if not uris:
            return None
        logout = [u for u in rp.get("post_logout_redirect_uris") or []
                  if isinstance(u, str) and u.startswith(entity_id + "/")]
        client = Client(entity_id, str(rp.get("client_name") or trusted.node)[:100], None, uris, logout,
                        f"openid profile email {c.REGIONS_SCOPE}", trusted.node)
        # Registered: a row like any client's (codes and refresh tokens refer to it), written when the metadata
        # differs from it (not on every request); a node the anchor drops is refused above whatever the row says.
        async with self.sessions() as s:
            row = (await s.execute(select(oauth_clients).where(oauth_clients.c.client_id == entity_id))).first()
        if row is not None and (row.name, list(row.redirect_uris), list(row.post_logout_redirect_uris),
                                row.secret_hash) == (client.name, uris, logout, None):
            return client
        async with self.sessions() as s, s.begin():
            stmt = db.insert_on_conflict(s, oauth_clients).values(
                client_id=entity_id, name=client.name, secret_hash=None, redirect_uris=uris,
                post_logout_redirect_uris=logout, scope=client.scope, created_at=utcnow())
            await s.execute(stmt.on_conflict_do_update(index_elements=["client_id"], set_={
                "name": stmt.excluded.name, "redirect_uris": stmt.excluded.redirect_uris,
                "post_logout_redirect_uris": stmt.excluded.post_logout_redirect_uris, "secret_hash": None}))
        return client

    async def user(self, user_id: str, auth_time: datetime | None = None) -> User | None:
        async with self.sessions() as s:
            return await self.user_in(s, user_id, auth_time)

    async def user_in(self, s: Executor, user_id: str, auth_time: datetime | None = None) -> User | None:
        row = (await s.execute(select(users).where(users.c.id == user_id))).first()
        if row is None:
            return None
        return User(row.id, row.handle, self.node, row.display_name, row.nickname, row.email, row.email_verified,
                    row.lang, auth_time)

    async def save_code(self, code: str, request: OAuth2Request) -> None:
        client, user = _granted(request)
        assert request.payload is not None  # authlib read the request's parameters before it made a code
        data = request.payload.data
        now = utcnow()
        async with self.sessions() as s, s.begin():
            if client.node:  # a member node: the person takes part there (My Page across regions)
                await regions.record_presence(s, user_id=user.id, entity_id=client.client_id,
                                              node=client.node, now=now)
            await s.execute(oauth_codes.insert().values(
                code_hash=digest(code), client_id=client.client_id, user_id=user.id,
                redirect_uri=request.payload.redirect_uri, scope=request.scope or "",  # as allowed
                nonce=data.get("nonce"), code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"), auth_time=user.auth_time,
                created_at=now, expires_at=now + CODE_TTL, used_at=None,
            ))

    async def claim_code(self, code: str, client_id: str) -> Code | None:
        """Marks the code used, once. A code presented again revokes what it was exchanged for (RFC 6749 4.1.2)."""
        now, h = utcnow(), digest(code)
        async with self.sessions() as s, s.begin():
            row = (await s.execute(
                update(oauth_codes)
                .where(oauth_codes.c.code_hash == h, oauth_codes.c.client_id == client_id,
                       oauth_codes.c.used_at.is_(None), oauth_codes.c.expires_at > now)
                .values(used_at=now)
                .returning(*oauth_codes.c)
            )).first()
            if row is None:
                await s.execute(update(oauth_refresh_tokens)
                                .where(oauth_refresh_tokens.c.code_hash == h,
                                       oauth_refresh_tokens.c.revoked_at.is_(None))
                                .values(revoked_at=now))
                return None
        return Code(row.code_hash, row.client_id, row.user_id, row.redirect_uri, row.scope, row.nonce,
                    row.code_challenge, row.code_challenge_method, aware(row.auth_time))

    def token_user(self, row: Any, token: Refresh) -> User | None:
        """The user read beside a refresh token (columns user_*), None if the account is gone."""
        if row.user_handle is None:
            return None
        return User(token.user_id, row.user_handle, self.node, row.user_display_name, row.user_nickname,
                    row.user_email, row.user_email_verified, row.user_lang, token.auth_time)

    @staticmethod
    async def revoke_family_of(s: Executor, token_hash: str, client_id: str | None = None) -> None:
        """Revoke the family of the refresh token with this hash (only if it is `client_id`'s, when given)."""
        where = [oauth_refresh_tokens.c.token_hash == token_hash]
        if client_id is not None:
            where.append(oauth_refresh_tokens.c.client_id == client_id)
        old = (await s.execute(select(oauth_refresh_tokens.c.family_id).where(*where))).first()
        if old is not None:
            await s.execute(update(oauth_refresh_tokens)
                            .where(oauth_refresh_tokens.c.family_id == old.family_id,
                                   oauth_refresh_tokens.c.revoked_at.is_(None))
                            .values(revoked_at=utcnow()))

    async def save_refresh(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """The refresh token of a code exchange (a refresh grant's are written by its batch)."""
        values = Store.refresh_values(token, request, utcnow())
        if values is not None:
            async with self.sessions() as s, s.begin():
                await s.execute(_INSERT_REFRESH, values)

    @staticmethod
    def refresh_values(token: dict[str, Any], request: OAuth2Request, now: datetime) -> dict[str, Any] | None:
        """The row of the refresh token authlib issued (None if it issued none): its family is the presented
        token's, or a new one after a code exchange."""
        refresh = token.get("refresh_token")
        if not refresh:
            return None
        previous: Refresh | None = getattr(request, "refresh_token", None)
        code: Code | None = getattr(request, "authorization_code", None)
        client, user = _granted(request)
        return {
            "token_hash": digest(refresh),
            "family_id": previous.family_id if previous else new_id(),
            "code_hash": code.code_hash if code else None,
            "client_id": client.client_id, "user_id": user.id, "scope": token.get("scope", ""),
            "auth_time": previous.auth_time if previous else (code.auth_time if code else now),
            "issued_at": now, "expires_at": now + REFRESH_TTL, "used_at": None, "revoked_at": None,
        }


def _granted(request: OAuth2Request) -> tuple[Client, User]:
    """The client and the person of a request authlib has authenticated: it sets both before it saves a code or a
    token (authlib types them as optional)."""
    client, user = request.client, request.user
    assert isinstance(client, Client) and isinstance(user, User), "authlib saves a grant only for a client and a user"
    return client, user


def _kid_of(token: str) -> str | None:
    """The kid a compact JWS names in its header, None if it names none or is no JWS (decode then refuses it)."""
    try:
        header = json.loads(base64.urlsafe_b64decode(token.split(".", 1)[0] + "=="))
    except (ValueError, UnicodeDecodeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def is_federated(client_id: str) -> bool:
    """Another node of the federation: its entity id (a URL) is its client id."""
    return client_id.startswith(("https://", "http://"))


# The refresh grant's statements, built once: each use then skips building the statement and its cache key.
_CLIENT = select(oauth_clients).where(oauth_clients.c.client_id == bindparam("client_id"))
_INSERT_REFRESH = oauth_refresh_tokens.insert()
# ... and for a batch of refreshes (OidcService._serve_refreshes): set-oriented, one statement a batch
_RT = oauth_refresh_tokens
_CLIENTS = select(oauth_clients).where(oauth_clients.c.client_id.in_(bindparam("ids", expanding=True)))
_TOKENS_WITH_USER = (
    select(_RT, *(users.c[name].label(f"user_{name}")
                  for name in ("handle", "display_name", "nickname", "email", "email_verified", "lang")))
    .select_from(_RT.outerjoin(users, users.c.id == _RT.c.user_id))
    .where(_RT.c.token_hash.in_(bindparam("hashes", expanding=True)))
    .order_by(_RT.c.token_hash)
    .with_for_update(of=_RT))  # PostgreSQL: locked in token order; SQLite holds the write lock from BEGIN IMMEDIATE
_MARK_USED = (update(_RT).where(_RT.c.token_hash.in_(bindparam("hashes", expanding=True)))
              .values(used_at=bindparam("now")))
_REVOKE_FAMILIES = (update(_RT).where(_RT.c.family_id.in_(bindparam("families", expanding=True)),
                                      _RT.c.revoked_at.is_(None))
                    .values(revoked_at=bindparam("now")))


def _client(row: Any) -> Client:
    return Client(row.client_id, row.name, row.secret_hash, list(row.redirect_uris),
                  list(row.post_logout_redirect_uris), row.scope)


def _refresh(row: Any) -> Refresh:
    return Refresh(row.token_hash, row.family_id, row.client_id, row.user_id, row.scope, aware(row.auth_time),
                   aware(row.expires_at))


# ---- authlib's server and grants ------------------------------------------------------------------------------


class Request(OAuth2Request):
    headers: dict[str, str]  # always given (authlib's request may have none)
    payload: BasicOAuth2Payload  # made here, from the query and the form

    def __init__(self, method: str, uri: str, headers: dict[str, str], args: dict[str, str],
                 form: dict[str, str]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._args: dict[str, str | None] = dict(args)
        self._form = form
        self.payload = BasicOAuth2Payload({**args, **form})

    @property
    def args(self) -> dict[str, str | None]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class S256Challenge(CodeChallenge):
    """PKCE for every client, S256 only (RFC 9700 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE is required)", redirect_uri=redirect_uri)
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256", redirect_uri=redirect_uri)
        super().validate_code_challenge(grant, redirect_uri)


class Provider(AuthorizationServer):
    def __init__(self, *, store: Store, bridge: Bridge, issuer: str) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.store = store
        self.bridge = bridge
        self.issuer = issuer
        self.register_token_generator("default", BearerTokenGenerator(
            access_token_generator=self._access_token,
            refresh_token_generator=lambda *_a, **_k: new_secret(),
            expires_generator=lambda *_a, **_k: ACCESS_TTL,
        ))
        provider = self

        class CodeGrant(AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

            def generate_authorization_code(self) -> str:
                return new_secret()

            def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
                provider.bridge(provider.store.save_code(code, request))

            def query_authorization_code(self, code: str, client: ClientMixin) -> Code | None:
                return provider.bridge(provider.store.claim_code(code, client.get_client_id()))

            def delete_authorization_code(self, authorization_code: Code) -> None:
                pass  # claimed (marked used) atomically when it was looked up

            def authenticate_user(self, authorization_code: Code) -> User | None:
                return provider.bridge(provider.store.user(authorization_code.user_id, authorization_code.auth_time))

        class RefreshGrant(RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
            INCLUDE_NEW_REFRESH_TOKEN = True

            # Only ever run by OidcService._serve_refreshes, which read beforehand what these hooks answer.
            # None: not this batch's token (authlib then answers invalid_grant; its stubs say a token always)
            def authenticate_refresh_token(self, refresh_token: str) -> Refresh | None:  # type: ignore[override]
                pre = _refresh_prefetched()
                pre.asked_token = True
                return pre.refresh if pre.token_hash == digest(refresh_token) else None

            def authenticate_user(self, refresh_token: Refresh) -> User | None:
                pre = _refresh_prefetched()
                return pre.user if pre.refresh is refresh_token else None

            def revoke_old_credential(self, refresh_token: TokenMixin) -> None:
                pass  # marked used by the batch's commit, with the new token's row

        class IdToken(OpenIDCode):
            DEFAULT_EXPIRES_IN = ID_TOKEN_TTL

            def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
                return False  # a nonce comes back only inside the one ID token of a single-use code

            def resolve_client_private_key(self, client: Client) -> Any:
                return _signing.get().key

            def get_client_algorithm(self, client: Client) -> str:
                return keys.ALG

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": keys.ALG, "kid": _signing.get().kid}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.client_id]}

            def generate_user_info(self, user: User, scope: str) -> UserInfo:
                return provider.user_claims(user, scope)

        self.register_grant(CodeGrant, [S256Challenge(required=True), IdToken(require_nonce=False)])
        self.register_grant(RefreshGrant)

    # authlib's framework hooks
    def validate_requested_scope(self, scope: str | None) -> None:
        """Scopes this provider does not know are ignored, not refused (OpenID Connect Core 3.1.2.1: "Scope values
        used that are not understood by an implementation SHOULD be ignored"): the client's get_allowed_scope then
        keeps those it may have. Only the authorization request asks this; a refresh request's scope is still held
        to what was granted (RFC 6749 6: wider is invalid_scope)."""
        return None

    # None: no such client (authlib then answers invalid_client; its stubs say a client always)
    def query_client(self, client_id: str) -> Client | None:  # type: ignore[override]
        pre = _prefetched.get()
        if pre is None:
            return self.bridge(self.store.client(client_id))
        return pre.clients.get(client_id)  # every id authlib may ask for was read beforehand

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        pre = _prefetched.get()
        if pre is None:
            self.bridge(self.store.save_refresh(token, request))
        else:
            pre.issued = (token, request)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> Any:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> c.OidcResponse:
        return c.OidcResponse(status=status, headers=dict(headers or []), body=body)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    # authlib's answers are what handle_response made (its stubs say `object`, or a tuple)
    def token_response(self, request: OAuth2Request) -> c.OidcResponse:
        return _made(self.create_token_response(request))

    def authorization_response(self, request: OAuth2Request, user: User, grant: Any) -> c.OidcResponse:
        return _made(self.create_authorization_response(request, user, grant))

    def error_response(self, request: OAuth2Request, error: OAuth2Error) -> c.OidcResponse:
        return _made(self.handle_error_response(request, error))

    # ours
    def _access_token(self, *, client: ClientMixin, grant_type: str, user: User, scope: str) -> str:
        now = int(time.time())
        signing = _signing.get()
        client_id = client.get_client_id()
        claims = {
            "iss": self.issuer, "sub": user.id, "aud": client_id, "client_id": client_id,
            "scope": scope, "iat": now, "exp": now + ACCESS_TTL, "jti": new_id(),
            "handle": f"{user.handle}@{user.node}",
        }
        alg, kid, key = signing.access_token_key()
        return jwt.encode({"alg": alg, "kid": kid, "typ": "at+jwt"}, claims, key, [alg])

    def user_claims(self, user: User, scope: str) -> UserInfo:
        scopes = set((scope or "").split())
        info = UserInfo(sub=user.id)
        if "profile" in scopes:
            info.update(name=user.display_name, nickname=user.nickname or None,
                        preferred_username=f"{user.handle}@{user.node}", locale=user.lang)
            info = UserInfo({k: v for k, v in info.items() if v is not None})
        if "email" in scopes:
            info.update(email=user.email, email_verified=user.email_verified)
        return info


def _made(answer: object) -> c.OidcResponse:
    if not isinstance(answer, c.OidcResponse):
        raise TypeError(f"authlib answered {type(answer).__name__}, not what Provider.handle_response makes")
    return answer


# ---- the endpoints the gateway calls --------------------------------------------------------------------------


def _error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> c.OidcResponse:
    return c.OidcResponse(status=status, headers={"Content-Type": "application/json", "Cache-Control": "no-store",
                                                  **(headers or {})},
                          body={"error": error, "error_description": description})


@dataclass
class OidcService:
    sessions: async_sessionmaker[AsyncSession]
    node: str
    issuer: str
    provider: Provider = field(init=False)

    resolver: TrustResolver | None = None
    anchor: str = ""
    # after an RP-initiated logout of a person of another node: (home entity id, the refresh token it gave this
    # node) for the home to revoke, as the portal's logout does (identity/regions.py revoke_at_home_later)
    on_home_logout: Callable[[str, str], None] | None = None

    def __post_init__(self) -> None:
        self.issuer = self.issuer.rstrip("/")
        self.store = Store(self.sessions, self.node, self.resolver)
        self.provider = Provider(store=self.store, bridge=Bridge(asyncio.get_running_loop()), issuer=self.issuer)
        self._key: tuple[float, keys.SigningKey] | None = None
        self._published: tuple[frozenset[str], KeySet] | None = None  # the published keys' kids, and parsed
        self._published_read_at = float("-inf")  # when they were last read (monotonic)
        # refreshes that arrive while a batch is being written are served together (see refresh): one batch at a
        # time on SQLite (one writer), a few at once on PostgreSQL (each mostly waits on its round trips)
        sqlite = self.sessions.kw["bind"].dialect.name == "sqlite"
        self.refresh_batches: GroupCommit[RefreshItem, c.OidcResponse] = GroupCommit(
            "refresh", self._serve_refreshes, concurrency=1 if sqlite else REFRESH_BATCHES_AT_ONCE)

    def metadata(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "userinfo_endpoint": f"{base}/oauth/userinfo",
            "jwks_uri": f"{base}/oauth/jwks",
            "end_session_endpoint": f"{base}/oauth/logout",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [keys.ALG],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,  # RFC 9207
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "nickname",
                                 "preferred_username", "locale", "email", "email_verified"],
            "ui_locales_supported": ["ja", "en"],
            "prompt_values_supported": ["none", "login"],
        }

    async def handle(self, r: c.OidcRequest) -> c.OidcResponse:
        if r.endpoint == "discovery":
            return c.OidcResponse(status=200, headers={"Content-Type": "application/json"}, body=self.metadata())
        if r.endpoint == "federation":
            # signed by the federation key (the one the anchor pins), which alone is its `jwks`; the provider's
            # keys ride inside, in metadata.openid_provider.jwks: a provider key rotation needs no re-pin
            async with self.sessions() as s, s.begin():
                await keys.active_key(s)  # a new node's first request: make the provider keys too
                federation = await keys.federation_key(s)
                published = await keys.published(s)
            statement = entity_configuration(entity_id=self.issuer, node=self.node, key=federation.key,
                                             kid=federation.kid, jwks=[federation.public_jwk()],
                                             provider=self.metadata(), provider_jwks=published,
                                             anchor=self.anchor or None)
            return c.OidcResponse(status=200, headers={"Content-Type": "application/entity-statement+jwt"},
                                  body=statement)
        if r.endpoint == "jwks":
            async with self.sessions() as s:
                published = await keys.published(s)
            if not published:  # the first request of a new node: make the key
                async with self.sessions() as s, s.begin():
                    await keys.active_key(s)
                    published = await keys.published(s)
            return c.OidcResponse(status=200, headers={"Content-Type": "application/json"}, body={"keys": published})
        handler: dict[str, Callable[[c.OidcRequest], Awaitable[c.OidcResponse]]] = {
            "authorize": self.authorize, "token": self.token, "userinfo": self.userinfo,
            "end_session": self.end_session, "revocation": self.revocation,
        }
        return await handler[r.endpoint](r)

    def _request(self, r: c.OidcRequest) -> Request:
        args = dict(parse_qsl(urlsplit(r.url).query, keep_blank_values=True))
        headers = {k.title(): v for k, v in r.headers.items()}  # authlib looks up "Authorization", "Content-Type"
        return Request(r.method, r.url, headers, args, dict(r.form) if r.method == "POST" else {})

    async def _signing_key(self, s: AsyncConnection) -> keys.SigningKey:
        """The signing key, read again at most every KEY_RECHECK seconds (a key retired by a rotation stays
        published for a day, so a token it signs in the seconds after still verifies); a rotation through this
        process forgets it at once (forget_signing_key)."""
        cached = self._key
        if cached is not None and time.monotonic() - cached[0] < KEY_RECHECK:
            return cached[1]
        key = await keys.current_key(s)
        if key is None or key.at_key is None:  # a key made in this transaction: not kept, it may roll back
            return await keys.active_key(s)
        self._key = (time.monotonic(), key)
        return key

    def forget_signing_key(self) -> None:
        self._key = None
        self._published_read_at = float("-inf")

    async def _load_signing_key(self) -> None:
        _signing.set(await keys.load(self.sessions))

    async def authorize(self, r: c.OidcRequest) -> c.OidcResponse:
        req = self._request(r)
        user: User | None = None
        if r.session_token:
            try:
                async with self.sessions() as s, s.begin():
                    sess = await current_session(s, node=self.node, token=r.session_token)
                user = await self.store.user(sess.user.id, sess.auth_time)
            except errors.Unauthorized:
                user = None
        p = self.provider
        try:
            grant = await asyncio.to_thread(p.get_consent_grant, req, user)
        except OAuth2Error as error:
            return self._with_iss(p.error_response(req, error))
        data = req.payload.data
        if user is not None and user.auth_time is not None:
            age = utcnow() - user.auth_time
            if "login" in (data.get("prompt") or "").split() and age > FRESH_LOGIN:
                user = None
            max_age = data.get("max_age")
            if max_age and max_age.isdigit() and age > timedelta(seconds=int(max_age)):
                user = None
        if user is None:
            return c.OidcResponse(status=200, login_required=True)
        return self._with_iss(await asyncio.to_thread(p.authorization_response, req, user, grant))

    def _with_iss(self, answer: c.OidcResponse) -> c.OidcResponse:
        """RFC 9207: a redirect back to the client (a code or an error) names this issuer, so a client that uses
        several providers (a node's visitors log in with any member's) can tell which one answered: a mix-up, where
        one provider's answer is taken to another's token endpoint, is refused by the client."""
        location = next((v for k, v in answer.headers.items() if k.lower() == "location"), None)
        if location is None or answer.status not in (302, 303):
            return answer
        parts = urlsplit(location)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
        location = parts._replace(query=urlencode([*query, ("iss", self.issuer)])).geturl()
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "location"} | {"Location": location}
        return answer.model_copy(update={"headers": headers})

    async def revocation(self, r: c.OidcRequest) -> c.OidcResponse:
        """RFC 7009 for refresh tokens: the client (authenticated as at the token endpoint: its secret, or a public
        client by its id, another node's through the trust chain) revokes a refresh token it holds, and with it the
        token's family, so nothing of that grant can be refreshed again (its access tokens are JWTs and expire
        within 10 minutes). A token that is unknown, already revoked or another client's gets 200 all the same and
        changes nothing (the spec's answer, which tells a prober nothing); access tokens cannot be revoked here
        (`unsupported_token_type` when the hint says so)."""
        if r.method != "POST":
            return _error(405, "invalid_request", "the revocation endpoint takes POST", {"Allow": "POST"})
        req = self._request(r)
        basic_id, basic_secret = extract_basic_authorization(req.headers)
        client_id = basic_id or r.form.get("client_id")
        secret = basic_secret if basic_id else r.form.get("client_secret")
        client = await self.store.client(client_id) if client_id else None
        authenticated = client is not None and (client.check_client_secret(secret or "") if not client.public
                                                else not secret)
        if client is None or not authenticated:
            return _error(401, "invalid_client", "client authentication failed",
                          {"WWW-Authenticate": 'Basic realm="token"'} if basic_id else None)
        token = r.form.get("token")
        if not token:
            return _error(400, "invalid_request", "the token to revoke is missing")
        if r.form.get("token_type_hint") == "access_token":
            return _error(400, "unsupported_token_type", "access tokens expire within 10 minutes; revoke the "
                                                         "refresh token")
        async with self.sessions() as s, s.begin():
            await Store.revoke_family_of(s, digest(token), client.client_id)
        return c.OidcResponse(status=200, headers={"Cache-Control": "no-store"}, body={})

    async def token(self, r: c.OidcRequest) -> c.OidcResponse:
        if r.method != "POST":
            return _error(405, "invalid_request", "the token endpoint takes POST", {"Allow": "POST"})
        req = self._request(r)
        if req.payload.grant_type == "refresh_token":
            resp = await self.refresh(req)
        else:
            await self._load_signing_key()
            resp = await asyncio.to_thread(self.provider.token_response, req)
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    async def refresh(self, req: Request) -> c.OidcResponse:
        """The refresh grant, served in a batch with the refreshes that arrive while the one before is being
        written (GroupCommit; `_serve_refreshes` says how): the federated clients the request names are resolved
        first (through the trust chain, in their own sessions), then it waits for its batch's commit. Served one
        transaction each, a refresh held the database for its own statements, their round trips through a busy
        event loop and its own commit (bench/README.md, bench.identity)."""
        basic_id, _ = extract_basic_authorization(req.headers)
        ids = {i for i in (basic_id, req.form.get("client_id"), req.payload.client_id) if i}
        federated = {i: await self.store.federated_client(i) for i in ids if is_federated(i)}
        token = req.form.get("refresh_token")
        return await self.refresh_batches.submit(
            RefreshItem(req, ids - federated.keys(), federated, digest(token) if token else None))

    async def _serve_refreshes(self, items: list[RefreshItem]) -> list[c.OidcResponse | BaseException]:
        """A batch of refreshes in one transaction (GroupCommit), each answered as it would be alone, in arrival
        order: the signing key (re-read at most every 10 s), the clients and the presented tokens with their users
        read by one statement each; authlib run on the event loop for each request, its hooks answering from what
        was read (`Prefetched`); then the used tokens marked, the new ones inserted and the families of tokens
        presented again revoked, one statement each, and one commit.

        Nothing changes between the reads and the writes: on SQLite, BEGIN IMMEDIATE holds the write lock from the
        first read; on PostgreSQL the tokens are read FOR UPDATE, in token order (two identity processes' batches
        wait for each other's tokens instead of both using one, and lock in one order). Within the batch a token is
        usable once, and a family revoked by an earlier request stays revoked for later ones (its token issued
        earlier in the batch is revoked with it, as when they come one after another). What is kept: a new token
        and the old one used; or, for a token already used, revoked or expired, its family revoked. Any other
        refusal (client authentication, another client's token, a wider scope) writes nothing; a request whose
        authlib run raises fails alone."""
        now = utcnow()
        hashes = list({i.token_hash for i in items if i.token_hash})
        local_ids = list({cid for i in items for cid in i.local_ids})
        engine = self.sessions.kw["bind"]
        results: list[c.OidcResponse | BaseException] = []
        async with engine.connect() as conn:
            tx = await conn.begin()
            try:
                signing = await self._signing_key(conn)
                clients = {row.client_id: _client(row) for row in
                           (await conn.execute(_CLIENTS, {"ids": local_ids}) if local_ids else [])}
                rows = {row.token_hash: row for row in
                        (await conn.execute(_TOKENS_WITH_USER, {"hashes": hashes}) if hashes else [])}
                used: set[str] = set()
                revoked: set[str] = set()
                inserts: list[dict[str, Any]] = []
                for item in items:
                    row = rows.get(item.token_hash) if item.token_hash else None
                    usable = (row is not None and row.used_at is None and row.revoked_at is None
                              and aware(row.expires_at) > now and row.token_hash not in used
                              and row.family_id not in revoked)
                    claimed = _refresh(row) if usable else None
                    pre = Prefetched({**{i: clients.get(i) for i in item.local_ids}, **item.federated},
                                     item.token_hash, claimed, self.store.token_user(row, claimed) if claimed else None)
                    try:
                        results.append(self._authlib_on_loop(item.req, signing, pre))
                    except Exception as exc:  # noqa: BLE001 - this request fails alone and writes nothing
                        results.append(exc)
                        continue
                    if pre.issued is not None and claimed is not None:
                        values = Store.refresh_values(*pre.issued, now)
                        used.add(claimed.token_hash)
                        if values is not None:
                            inserts.append(values)
                    elif pre.asked_token and claimed is None and row is not None:
                        revoked.add(row.family_id)  # a used, revoked or expired token presented: its family
                if used:
                    await conn.execute(_MARK_USED, {"hashes": list(used), "now": now})
                if inserts:
                    await conn.execute(_INSERT_REFRESH, inserts)
                if revoked:
                    await conn.execute(_REVOKE_FAMILIES, {"families": list(revoked), "now": now})
                await tx.commit()
            except BaseException:
                await tx.rollback()
                raise
        return results

    def _authlib_on_loop(self, req: Request, signing: keys.SigningKey, pre: Prefetched) -> c.OidcResponse:
        reset_signing, reset_pre = _signing.set(signing), _prefetched.set(pre)
        try:
            return self.provider.token_response(req)
        finally:
            _prefetched.reset(reset_pre)
            _signing.reset(reset_signing)

    async def _keyset(self, kid: str | None = None) -> KeySet:
        """The published public keys (what a relying party would fetch); no private key is touched. Read again
        when the last read is KEY_RECHECK seconds old or the token names a kid that read lacked (a key made since,
        or a forgery: read each time, as every call was before), parsed again only when the set of kids changed
        (an EC key's import validates its point: ~1 ms). A retired key thus verifies up to KEY_RECHECK seconds
        after its day is over, as a relying party's cached key set would; a rotation here forgets the read."""
        now = time.monotonic()
        known = self._published
        if known is not None and now - self._published_read_at < KEY_RECHECK and (kid is None or kid in known[0]):
            return known[1]
        async with self.sessions() as s:
            published = await keys.published(s)
        kids = frozenset(k["kid"] for k in published)  # a kid is its key's thumbprint: same kid, same key
        if known is None or known[0] != kids:
            self._published = known = (kids, KeySet.import_key_set({"keys": published}))
        self._published_read_at = now
        return known[1]

    async def verify_access_token(self, token: str) -> dict[str, Any]:
        """Claims of a valid access token of this provider; raises Unauthorized otherwise."""
        try:
            decoded = jwt.decode(token, await self._keyset(_kid_of(token)), algorithms=keys.ACCESS_TOKEN_ALGS)
        except (JoseError, ValueError) as exc:
            raise c.TOKEN_INVALID(f"invalid token: {exc.__class__.__name__}") from None
        if decoded.header.get("typ") != "at+jwt":
            raise c.TOKEN_INVALID("not an access token")
        claims = decoded.claims
        now = time.time()
        if claims.get("iss") != self.issuer or not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
            raise c.TOKEN_INVALID("the token is expired or was not issued here")
        return claims

    async def userinfo(self, r: c.OidcRequest) -> c.OidcResponse:
        auth = next((v for k, v in r.headers.items() if k.lower() == "authorization"), "")  # any case
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "invalid_request", "a bearer access token is required", {"WWW-Authenticate": "Bearer"})
        try:
            claims = await self.verify_access_token(token.strip())
        except errors.Unauthorized as exc:
            return _error(401, "invalid_token", exc.reason,
                          {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.reason}"'})
        user = await self.store.user(claims["sub"])
        if user is None:
            return _error(401, "invalid_token", "the account no longer exists",
                          {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return c.OidcResponse(status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
                              body=dict(self.provider.user_claims(user, claims.get("scope", ""))))

    async def end_session(self, r: c.OidcRequest) -> c.OidcResponse:
        """RP-initiated logout 1.0: ends this node's session; back to the client only to a registered URI.

        The person is asked first unless the request carries an id_token_hint of the person logged in here (§2:
        the OP MUST ask when no hint was given or the hint does not belong to the current session): the answer
        `{"confirm_logout": true}` has the gateway show its question, whose CSRF-checked form comes back with the
        LOGOUT_CONFIRMED header; until then nothing is ended and no cookie cleared (an `<img src>` on any page
        cannot log anyone out). A hint that does not verify, or a logout URI not registered for the client, is
        refused as before, without a redirect (§3, §4). With no live session there is nothing to ask about."""
        params = {**dict(parse_qsl(urlsplit(r.url).query)), **(r.form if r.method == "POST" else {})}
        hint, target, state = params.get("id_token_hint"), params.get("post_logout_redirect_uri"), params.get("state")
        client_id = params.get("client_id")
        sub = None
        if hint:
            try:
                # an expired hint is fine
                decoded = jwt.decode(hint, await self._keyset(_kid_of(hint)), algorithms=[keys.ALG])
            except (JoseError, ValueError):
                return _error(400, "invalid_request", "id_token_hint is not an ID token of this provider")
            claims = decoded.claims
            aud = claims.get("aud")
            aud_ids = aud if isinstance(aud, list) else [aud]
            if claims.get("iss") != self.issuer or (client_id and client_id not in aud_ids):
                return _error(400, "invalid_request", "id_token_hint was not issued here for this client")
            client_id = client_id or (aud_ids[0] if aud_ids else None)
            sub = claims.get("sub")
        redirect = None
        if target:
            client = await self.store.client(client_id)
            if client is None or target not in client.post_logout_redirect_uris:
                return _error(400, "invalid_request", "post_logout_redirect_uri is not registered for the client")
            redirect = target + ("&" if urlsplit(target).query else "?") + urlencode({"state": state}) if state \
                else target
        confirmed = any(k.lower() == LOGOUT_CONFIRMED and v == "1" for k, v in r.headers.items())
        if r.session_token:
            async with self.sessions() as s, s.begin():
                try:
                    sess = await current_session(s, node=self.node, token=r.session_token)
                except errors.Unauthorized:
                    sess = None
                if sess is not None and not confirmed and (sub is None or sess.user.id != sub):
                    return c.OidcResponse(status=200, headers={"Cache-Control": "no-store"},
                                          body={"confirm_logout": True})
                if sess is not None:
                    home = await regions.home_refresh_of(s, session_token=r.session_token)
                    await logout(s, token=r.session_token)
                else:
                    home = None
            if home is not None and self.on_home_logout is not None:
                self.on_home_logout(*home)
        if redirect:
            return c.OidcResponse(status=302, headers={"Location": redirect}, clear_session=True)
        return c.OidcResponse(status=200, body={"logged_out": True}, clear_session=True)
