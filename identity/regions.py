"""My Page across regions, the identity service's part (docs/identity.md, "My Page across regions").

- At a person's **home node**: where they take part is recorded (`presence`) whenever this node's provider issues
  a code for them to a member node's client; `plan` gives the gateway one signed query per such node that is still
  trusted (a JWT of type `towntip-person-query+jwt`, signed with this node's provider RS256 key — published in its
  entity configuration's `metadata.openid_provider.jwks`, under the federation key the anchor pinned — for that
  node only, 60 s, single use), for the person themself (their session) or a member node acting for them (an
  access token with the scope `regions`).
- At **any node**: `verify` checks a query another node sent about one of its people, through the federation's
  trust chain, and maps the person to their user id here.
- At a node where a person of another node logged in: the home node's tokens (scope `regions`) are kept with the
  session (`keep_home_tokens`), and `home_token` hands the gateway a live access token, refreshing it first when
  it is about to expire — one refresh at a time per session, since the home node's refresh tokens rotate and a
  token presented twice revokes the whole family.

Never holds a database transaction while it calls another node (that node may call back; SQLite has one connection).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity import keys
from identity.accounts import current_session, digest, new_secret, read_session
from identity.federation import TrustError, TrustResolver, unverified_claims
from identity.models import home_tokens, presence, query_jtis, users
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import identity as c
from towntip.kernel.trust import import_jwks

log = logging.getLogger(__name__)
QUERY_TTL = 60  # seconds a signed query lives
CLOCK_SKEW = 30  # seconds another node's clock may run ahead
REFRESH_MARGIN = timedelta(seconds=30)  # an access token this close to its expiry is refreshed first
LEASE = timedelta(seconds=15)  # how long one refresh may hold a session's tokens
LEASE_WAIT = 10.0  # seconds a second caller waits for a refresh under way
RESOLVE_TIMEOUT = 1.5  # seconds the plan waits for the anchor and each present node's chain


async def record_presence(s: AsyncSession, *, user_id: str, entity_id: str, node: str, now: datetime) -> None:
    """The person logs in at a member node: remembered here, at home, with the first and last time."""
    stmt = db.insert_on_conflict(s, presence).values(user_id=user_id, entity_id=entity_id, node=node,
                                                     first_seen=now, last_seen=now)
    await s.execute(stmt.on_conflict_do_update(index_elements=["user_id", "entity_id"],
                                               set_={"last_seen": now, "node": node}))


async def keep_home_tokens(s: AsyncSession, *, session_token: str, user_id: str, entity_id: str,
                           tokens: dict[str, Any], now: datetime) -> bool:
    """At a federated login here: the home node's tokens, kept with the new session if they carry `regions`."""
    scope = str(tokens.get("scope") or "")
    access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
    if c.REGIONS_SCOPE not in scope.split() or not isinstance(access, str) or not isinstance(refresh, str):
        return False
    expires_in = tokens.get("expires_in")
    ttl = int(expires_in) if isinstance(expires_in, int) and 0 < expires_in <= 86400 else 60
    await s.execute(home_tokens.insert().values(
        session_hash=digest(session_token), user_id=user_id, entity_id=entity_id, access_token=access[:4096],
        access_expires_at=now + timedelta(seconds=ttl), refresh_token=refresh[:200], scope=scope[:200],
        lease_until=None, updated_at=now))
    return True


async def home_refresh_of(s: AsyncSession, *, session_token: str) -> tuple[str, str] | None:
    """(the home node's entity id, its refresh token) kept with this session, if any (read before a logout)."""
    row = (await s.execute(select(home_tokens.c.entity_id, home_tokens.c.refresh_token)
                           .where(home_tokens.c.session_hash == digest(session_token)))).first()
    return (row.entity_id, row.refresh_token) if row is not None else None


def _error_code(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


@dataclass
class Regions:
    sessions: async_sessionmaker[AsyncSession]
    node: str
    entity_id: str  # this node's public base URL: its issuer and entity id
    resolver: TrustResolver | None
    client: httpx.AsyncClient
    verify_access_token: Any  # OidcService.verify_access_token
    client_of: Any  # Store.client: a client by id (a member node resolved through the trust chain), or None
    resolve_timeout: float = RESOLVE_TIMEOUT
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _members_cache: tuple[float, set[str]] | None = None
    _revoking: set[asyncio.Task] = field(default_factory=set)

    def revoke_at_home_later(self, entity_id: str, refresh_token: str) -> None:
        """After a logout here: the home node revokes the refresh token it issued to this node for the session
        (RFC 7009), so the tokens this node forgot cannot be used by anyone who copied them. In the background:
        the logout does not wait for another node; a failure is logged (the token then lives until it expires)."""
        task = asyncio.ensure_future(self._revoke_at_home(entity_id, refresh_token))
        self._revoking.add(task)
        task.add_done_callback(self._revoking.discard)

    async def _home_endpoint(self, entity_id: str, name: str) -> str:
        """The home node's `name` endpoint from its provider metadata, found through the trust chain; Forbidden if
        the node is no longer trusted or names an endpoint outside its own site."""
        try:
            home = await self._trust().resolve(entity_id)
        except TrustError as exc:
            raise c.HOME_UNTRUSTED(f"the home node is no longer trusted: {exc}") from None
        endpoint = str(home.provider.get(name, ""))
        if not endpoint.startswith(home.entity_id + "/"):
            raise c.HOME_FOREIGN_ENDPOINT(f"the home node names no {name} of its own site")
        return endpoint

    async def _revoke_at_home(self, entity_id: str, refresh_token: str) -> None:
        try:
            endpoint = await self._home_endpoint(entity_id, "revocation_endpoint")
            r = await self.client.post(endpoint, data={"token": refresh_token, "token_type_hint": "refresh_token",
                                                       "client_id": self.entity_id}, timeout=5)
            if r.status_code != 200:
                log.warning("home node %s did not revoke the session's refresh token (HTTP %s)", entity_id,
                            r.status_code)
        except (errors.ServiceError, httpx.HTTPError) as exc:
            log.warning("could not ask %s to revoke the session's refresh token: %s", entity_id, exc)

    def _trust(self) -> TrustResolver:
        if self.resolver is None:
            raise c.REGIONS_NO_FEDERATION("this node belongs to no federation (no trust anchor configured)")
        return self.resolver

    # ---- at home: the signed queries ----------------------------------------------------------------------------

    async def plan(self, data: c.RegionsPlanIn) -> c.RegionsPlan:
        caller_node: str | None = None
        caller_entity: str | None = None
        if data.session_token:
            async with self.sessions() as s:  # a read: the gateway's own session check records the visit
                user_id = (await read_session(s, node=self.node, token=data.session_token))[0].user.id
        elif data.access_token:
            claims = await self.verify_access_token(data.access_token)
            if c.REGIONS_SCOPE not in str(claims.get("scope", "")).split():
                raise c.REGIONS_SCOPE_MISSING(f"the access token does not carry the scope {c.REGIONS_SCOPE!r}")
            client = await self.client_of(str(claims.get("client_id", "")))
            if client is None:
                raise c.REGIONS_CLIENT_UNTRUSTED("the access token's client is no longer known or trusted here")
            user_id = str(claims.get("sub", ""))
            caller_node, caller_entity = client.node or None, client.client_id if client.node else None
        else:
            raise c.REGIONS_CREDENTIAL_REQUIRED("a session token or an access token is required")
        async with self.sessions() as s:
            row = (await s.execute(select(users).where(users.c.id == user_id))).first()
            where = await s.execute(select(presence).where(presence.c.user_id == user_id)
                                    .order_by(presence.c.node))
            places = where.all()
        if row is None:
            raise c.ACCOUNT_GONE("the account no longer exists")
        if row.home_node is not None:
            raise c.REGIONS_HOME_ONLY("only the person's home node knows where they take part: ask it")
        handle = f"{row.handle}@{self.node}"
        places = [p for p in places if p.entity_id != caller_entity]
        if not places:  # most people take part at home only: no trust anchor to ask, nothing to sign
            return c.RegionsPlan(user_id=user_id, global_handle=handle, home_node=self.node, queries=[], removed=[],
                                 unreachable=[], caller_node=caller_node)
        listed, *trusted = await asyncio.gather(self._bounded(self._members(), None),
                                                *(self._bounded(self._resolve(p.entity_id), "no answer in time")
                                                  for p in places))
        queries: list[c.RegionQuery] = []
        removed: list[c.RemovedRegion] = []
        unreachable: list[c.RemovedRegion] = []
        signing = await keys.load(self.sessions)
        now = int(time.time())
        for place, found in zip(places, trusted, strict=True):
            if isinstance(found, str):  # no chain now: removed by the anchor, or listed and its site is down
                if listed is None:
                    unreachable.append(c.RemovedRegion(node=place.node, url=place.entity_id,
                                                       reason=f"the trust anchor did not answer; {found}"))
                    continue
                if place.entity_id not in listed:
                    removed.append(c.RemovedRegion(node=place.node, url=place.entity_id, reason=found))
                    continue
            node, url = (place.node, place.entity_id) if isinstance(found, str) else (found.node, found.entity_id)
            token = jwt.encode({"alg": keys.ALG, "kid": signing.kid, "typ": c.PERSON_QUERY_TYP}, {
                "iss": self.entity_id, "aud": url, "sub": handle, "iat": now, "exp": now + QUERY_TTL,
                "jti": new_secret(),
            }, signing.key, [keys.ALG])
            queries.append(c.RegionQuery(node=node, url=url, token=token, first_seen=db.aware(place.first_seen),
                                         last_seen=db.aware(place.last_seen)))
        return c.RegionsPlan(user_id=user_id, global_handle=handle, home_node=self.node, queries=queries,
                             removed=removed, unreachable=unreachable, caller_node=caller_node)

    async def _bounded(self, work: Any, late: Any) -> Any:
        """The plan must leave My Page time to ask the regions: a node or anchor that hangs counts as not answering
        (a listed member is then still asked, and shown unreachable if it stays silent)."""
        try:
            return await asyncio.wait_for(work, self.resolve_timeout)
        except TimeoutError:
            return late

    async def _resolve(self, entity_id: str) -> Any:
        """The member, still trusted now; or why not (a string)."""
        try:
            return await self._trust().resolve(entity_id)
        except TrustError as exc:
            return str(exc)

    async def _members(self) -> set[str] | None:
        """The anchor's members (entity ids), or None when the anchor does not answer. Kept as long as the
        resolver keeps a chain (its cache_seconds): a removal reaches this node within that time, as for logins."""
        trust = self._trust()
        cached = self._members_cache
        if cached is not None and time.monotonic() - cached[0] < trust.cache_seconds:
            return cached[1]
        try:
            members = {m.rstrip("/") for m in await trust.members()}
        except (TrustError, ValueError):
            return None
        self._members_cache = (time.monotonic(), members)
        return members

    # ---- at any node: a home node's query about one of its people ----------------------------------------------

    async def verify(self, data: c.PersonQueryIn) -> c.QueriedPerson:
        iss, asker = await self._trusted_asker(data.token)
        claims = self._query_claims(data.token, asker)
        sub, exp, jti = claims["sub"], claims["exp"], claims["jti"]
        at = utcnow()
        async with self.sessions() as s, s.begin():
            row = (await s.execute(select(users.c.id).where(users.c.handle == sub,
                                                            users.c.home_node == asker.node))).first()
            if row is None:
                raise c.PEOPLE_NOT_FOUND(f"nobody known here as {sub}")
            await s.execute(delete(query_jtis).where(query_jtis.c.expires_at < at))
            fresh = (await s.execute(
                db.insert_on_conflict(s, query_jtis)
                .values(jti=jti, issuer=iss, expires_at=datetime.fromtimestamp(exp, at.tzinfo))
                .on_conflict_do_nothing(index_elements=["issuer", "jti"]).returning(query_jtis.c.jti))).first()
            if fresh is None:
                raise c.QUERY_REPLAYED("this query was answered already (its jti was used)")
        return c.QueriedPerson(user_id=row.id, global_handle=sub, asker=asker.node)

    async def _trusted_asker(self, token: str) -> tuple[str, Any]:
        """The query's issuer (iss) and its resolved entity, once the anchor lists it and its chain resolves."""
        try:
            unverified = unverified_claims(token)
        except TrustError:
            raise c.QUERY_MALFORMED("the query is not a JWT") from None
        iss = unverified.get("iss")
        if not isinstance(iss, str) or not iss.startswith(("https://", "http://")):
            raise c.QUERY_MALFORMED("the query names no asking node (iss)")
        members = await self._members()  # first: no fetch from a URL a stranger names unless the anchor lists it
        if members is None:
            raise c.FEDERATION_ANCHOR_UNAVAILABLE(
                "the trust anchor did not answer; the asking node cannot be checked now")
        if iss.rstrip("/") not in members:
            raise c.QUERY_UNTRUSTED("the asking node is not trusted: not a member of this federation")
        try:
            asker = await self._trust().resolve(iss)
        except TrustError as exc:
            raise c.QUERY_UNTRUSTED(f"the asking node is not trusted: {exc}") from None
        return iss, asker

    def _query_claims(self, token: str, asker: Any) -> dict[str, Any]:
        """The query's claims once signed by the asker's provider keys and well formed: meant for this node, in
        its lifetime, about one of the asker's own people (sub, exp, iat and jti checked)."""
        try:
            # its provider keys (what plan() signs with), not its federation key
            decoded = jwt.decode(token, import_jwks(asker.provider_jwks), algorithms=[keys.ALG])
        except (JoseError, ValueError) as exc:
            raise c.QUERY_INVALID(f"the query does not verify with the asking node's vouched keys: "
                                      f"{exc.__class__.__name__}") from None
        if decoded.header.get("typ") != c.PERSON_QUERY_TYP:
            raise c.QUERY_MALFORMED(f"not a person query (typ must be {c.PERSON_QUERY_TYP})")
        claims = decoded.claims
        if claims.get("aud") != self.entity_id:
            raise c.QUERY_WRONG_AUDIENCE("the query is meant for another node")
        exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
        if not isinstance(exp, int) or not isinstance(iat, int) or not isinstance(jti, str) or not 8 <= len(jti) <= 100:
            raise c.QUERY_MALFORMED("the query needs iat, exp and a jti")
        now = time.time()
        if exp <= now:
            raise c.QUERY_INVALID("the query has expired")
        if iat > now + CLOCK_SKEW:
            raise c.QUERY_INVALID("the query was issued in the future")
        if exp - iat > QUERY_TTL:
            raise c.QUERY_MALFORMED(f"a query may live {QUERY_TTL} s at most")
        sub = claims.get("sub")
        if not isinstance(sub, str) or sub.rpartition("@")[2] != asker.node:
            raise c.REGIONS_HOME_ONLY("only the person's home node may ask about them")
        return dict(claims)

    # ---- at another node: the home node's access token for this session ----------------------------------------

    async def home_token(self, data: c.SessionIn) -> c.HomeAccess:
        async with self.sessions() as s, s.begin():
            await current_session(s, node=self.node, token=data.session_token)
        key = digest(data.session_token)
        row = await self._tokens(key)
        if db.aware(row.access_expires_at) - REFRESH_MARGIN > utcnow():
            return c.HomeAccess(home_node=row.node, url=row.entity_id, access_token=row.access_token)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # one refresh per session in this process; the lease guards across processes
                return await self._refresh(key)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def _tokens(self, key: str) -> Any:
        async with self.sessions() as s:
            row = (await s.execute(
                select(home_tokens, users.c.home_node.label("node")).join(users, users.c.id == home_tokens.c.user_id)
                .where(home_tokens.c.session_hash == key))).first()
        if row is None:
            raise c.HOME_NO_ACCESS("this session holds no access to the home node (log in with it again)")
        return row

    async def _refresh(self, key: str) -> c.HomeAccess:
        deadline = time.monotonic() + LEASE_WAIT
        while True:
            row = await self._tokens(key)
            now = utcnow()
            if db.aware(row.access_expires_at) - REFRESH_MARGIN > now:
                return c.HomeAccess(home_node=row.node, url=row.entity_id, access_token=row.access_token)
            async with self.sessions() as s, s.begin():
                claimed = (await s.execute(
                    update(home_tokens)
                    .where(home_tokens.c.session_hash == key, home_tokens.c.refresh_token == row.refresh_token,
                           (home_tokens.c.lease_until.is_(None)) | (home_tokens.c.lease_until < now))
                    .values(lease_until=now + LEASE).returning(home_tokens.c.session_hash))).first()
            if claimed is not None:
                break
            if time.monotonic() > deadline:
                raise c.HOME_RENEWING("the home node's token is being renewed; try again")
            await asyncio.sleep(0.1)
        try:
            tokens = await self._post_refresh(row)
        except BaseException:
            async with self.sessions() as s, s.begin():
                await s.execute(update(home_tokens).where(home_tokens.c.session_hash == key)
                                .values(lease_until=None))
            raise
        if tokens is None:  # the home node refused the refresh token: this session's access is over
            async with self.sessions() as s, s.begin():
                await s.execute(delete(home_tokens).where(home_tokens.c.session_hash == key))
            raise c.HOME_LOGIN_ENDED("the home node no longer accepts this login: log in with it again")
        expires_in = tokens.get("expires_in")
        ttl = int(expires_in) if isinstance(expires_in, int) and 0 < expires_in <= 86400 else 60
        now = utcnow()
        async with self.sessions() as s, s.begin():
            await s.execute(update(home_tokens).where(home_tokens.c.session_hash == key).values(
                access_token=str(tokens["access_token"])[:4096], refresh_token=str(tokens["refresh_token"])[:200],
                access_expires_at=now + timedelta(seconds=ttl), scope=str(tokens.get("scope") or row.scope)[:200],
                lease_until=None, updated_at=now))
        return c.HomeAccess(home_node=row.node, url=row.entity_id, access_token=str(tokens["access_token"]))

    async def _post_refresh(self, row: Any) -> dict[str, Any] | None:
        """The refresh grant at the home node's token endpoint (found through the trust chain); None if refused."""
        endpoint = await self._home_endpoint(row.entity_id, "token_endpoint")
        try:
            r = await self.client.post(endpoint, data={
                "grant_type": "refresh_token", "refresh_token": row.refresh_token, "client_id": self.entity_id,
            }, timeout=5)
        except httpx.HTTPError as exc:
            raise c.HOME_UNAVAILABLE(f"the home node did not answer: {exc.__class__.__name__}") from None
        if r.status_code in (400, 401) and _error_code(r) in ("invalid_grant", "invalid_client", "invalid_scope"):
            return None
        if r.status_code != 200:
            raise c.HOME_UNAVAILABLE(f"the home node could not renew the token (HTTP {r.status_code})")
        tokens = r.json()
        if not isinstance(tokens.get("access_token"), str) or not isinstance(tokens.get("refresh_token"), str):
            raise c.HOME_UNAVAILABLE("the home node answered the refresh without tokens")
        return tokens
