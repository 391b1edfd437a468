"""Checking another node through the federation's trust chain (OpenID Federation 1.0 in spirit): the shared
half of docs/federation.md's "The trust chain", used by every service that must know whether a node is a member
(identity for logins and My Page across regions, projects for the themes and cases it copies).

`TrustResolver.resolve(entity_id)` fetches the node's self-signed entity configuration and the trust anchor's
statement about it, checks the anchor's signature with the anchor's keys (a JWKS file handed over out of band) and
the node's with the federation key the anchor vouched for (pinned), and caches the result for at most
`cache_seconds` (never past a statement's expiry). The node's provider keys, for its ID tokens and signed queries,
are those of its verified configuration's `metadata.openid_provider.jwks` (`TrustedEntity.provider_jwks`). The
anchor itself is its own app (towntip/anchor/); a node's own configuration is identity's (identity/federation.py).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, KeySetSerialization, RSAKey

log = logging.getLogger(__name__)

ENTITY_TYP = "entity-statement+jwt"
STATEMENT_TTL = 24 * 3600
WELL_KNOWN = "/.well-known/openid-federation"


class TrustError(Exception):
    """The other node's chain does not hold: unknown to the anchor, removed, tampered, expired, unreachable."""


def sign_statement(key: RSAKey, kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": ENTITY_TYP}, claims, key, ["RS256"])


def _verify(token: str, keys: KeySet) -> dict[str, Any]:
    try:
        decoded = jwt.decode(token, keys, algorithms=["RS256"])
    except (JoseError, ValueError) as exc:
        raise TrustError(f"bad signature or statement: {exc.__class__.__name__}") from None
    if decoded.header.get("typ") != ENTITY_TYP:
        raise TrustError("not an entity statement")
    claims = decoded.claims
    now = time.time()
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise TrustError("statement expired")
    if isinstance(claims.get("iat"), int) and claims["iat"] > now + 60:
        raise TrustError("statement issued in the future")
    return claims


def import_jwks(jwks: dict[str, Any]) -> KeySet:
    """A key set from JSON read off the wire: joserfc checks its keys when it imports them, so the JSON object is
    taken as its `KeySetSerialization` here."""
    return KeySet.import_key_set(cast(KeySetSerialization, jwks))


def verify_statement(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """A statement's claims once it verifies with one of `jwks` (and its typ, exp and iat hold); else TrustError."""
    try:
        keys = import_jwks(jwks)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise TrustError(f"not a usable key set: {exc.__class__.__name__}") from None
    return _verify(token, keys)


def unverified_claims(token: str) -> dict[str, Any]:
    try:
        _header, payload, _sig = token.split(".")
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return claims
    except (ValueError, json.JSONDecodeError):
        raise TrustError("not a JWT") from None


# ---- resolving another node -----------------------------------------------------------------------------------


@dataclass
class TrustedEntity:
    """A node whose chain holds. `provider_jwks` are its provider's keys (`metadata.openid_provider.jwks` of its
    configuration, which its pinned federation key signed): they check its ID tokens and its signed queries.
    `federation_jwks` is its federation key (its configuration's `jwks`): it signs entity statements only, never
    an ID token or a query; no key set falls back to the other."""

    entity_id: str
    node: str
    provider: dict[str, Any]
    relying_party: dict[str, Any]
    provider_jwks: dict[str, Any]
    federation_jwks: dict[str, Any]
    expires: float


def _key_set(value: Any) -> dict[str, Any]:
    """A JWKS as published ({"keys": [...]}), or an empty one for anything else (an older node publishes no
    `openid_provider.jwks`: its ID tokens and queries then verify with nothing, until it upgrades)."""
    if isinstance(value, dict) and isinstance(value.get("keys"), list):
        return {"keys": [k for k in value["keys"] if isinstance(k, dict)]}
    return {"keys": []}


@dataclass
class TrustResolver:
    anchor: str
    anchor_jwks: dict[str, Any]
    cache_seconds: float = 300.0
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=5))
    _cache: dict[str, TrustedEntity] = field(default_factory=dict)

    @classmethod
    def from_files(cls, anchor: str, jwks_path: str, cache_seconds: float = 300.0) -> TrustResolver:
        return cls(anchor.rstrip("/"), json.loads(Path(jwks_path).read_text()), cache_seconds)

    async def _get(self, url: str, **params: str) -> httpx.Response:
        try:
            r = await self.client.get(url, params=params or None)
        except httpx.HTTPError as exc:
            raise TrustError(f"cannot reach {url}: {exc.__class__.__name__}") from None
        return r

    async def resolve(self, entity_id: str) -> TrustedEntity:
        entity_id = entity_id.rstrip("/")
        hit = self._cache.get(entity_id)
        if hit is not None and hit.expires > time.time():
            return hit
        r = await self._get(entity_id + WELL_KNOWN)
        if r.status_code != 200:
            raise TrustError(f"{entity_id} publishes no entity configuration ({r.status_code})")
        own_token = r.text.strip()
        own_unverified = unverified_claims(own_token)
        if self.anchor not in (own_unverified.get("authority_hints") or []):
            raise TrustError(f"{entity_id} does not name our trust anchor")
        f = await self._get(self.anchor + "/federation/fetch", sub=entity_id)
        if f.status_code != 200:
            raise TrustError(f"the trust anchor does not vouch for {entity_id} ({f.status_code})")
        statement = _verify(f.text.strip(), import_jwks(self.anchor_jwks))
        if statement.get("iss") != self.anchor or statement.get("sub") != entity_id:
            raise TrustError("the anchor's statement is about someone else")
        own = _verify(own_token, import_jwks(statement.get("jwks") or {"keys": []}))
        if own.get("iss") != entity_id or own.get("sub") != entity_id:
            raise TrustError("the entity configuration names another entity")
        meta = own.get("metadata") or {}
        node = (statement.get("metadata") or {}).get("towntip_node", {}).get("node_id")
        if not node or node != meta.get("towntip_node", {}).get("node_id"):
            raise TrustError("the node id is not the one the anchor vouched for")
        expires = min(time.time() + self.cache_seconds, float(statement["exp"]), float(own["exp"]))
        provider = meta.get("openid_provider") or {}
        trusted = TrustedEntity(entity_id, node, provider, meta.get("openid_relying_party") or {},
                                _key_set(provider.get("jwks")), _key_set(own.get("jwks")), expires)
        if self.cache_seconds > 0:
            self._cache[entity_id] = trusted
        return trusted

    async def member_nodes(self, known: dict[str, str]) -> dict[str, str]:
        """The anchor's members as {node id: entity id}, each resolved through its signed configuration; a member
        listed but not answering for a moment stays, as `known` ({node id: public URL}) had it. TrustError when the
        anchor does not list its members."""
        by_url = {u.rstrip("/"): n for n, u in known.items()}
        found: dict[str, str] = {}
        for entity_id in await self.members():
            try:
                found[(await self.resolve(entity_id)).node] = entity_id
            except TrustError as exc:
                if entity_id.rstrip("/") in by_url:  # listed but down for a moment: still a member
                    found[by_url[entity_id.rstrip("/")]] = entity_id
                else:
                    log.info("federation member %s not resolved yet: %s", entity_id, exc)
        return found

    async def members(self) -> list[str]:
        r = await self._get(self.anchor + "/federation/list")
        if r.status_code != 200:
            raise TrustError(f"the trust anchor does not list its members ({r.status_code})")
        return [str(x) for x in r.json()]

    async def by_node(self, node: str) -> TrustedEntity:
        """The trusted entity whose node id is `node` (for a handle like name@node)."""
        for entity_id in await self.members():
            try:
                trusted = await self.resolve(entity_id)
            except TrustError:
                continue
            if trusted.node == node:
                return trusted
        raise TrustError(f"no trusted node {node!r} in this federation")
