"""The trust anchor's state and statements: the members it vouches for, their keys as it pinned them at
enrolment, and the subordinate statements it signs about them (towntip/anchor/__init__.py tells the whole story).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from towntip.kernel.trust import (
    STATEMENT_TTL,
    WELL_KNOWN,
    TrustError,
    sign_statement,
    unverified_claims,
    verify_statement,
)

# ---- enrolment: what the anchor pins -------------------------------------------------------------------------


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url) of a public RSA key, from its own members (never its `kid`)."""
    try:
        return RSAKey.import_key(jwk).thumbprint()
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise TrustError(f"not an RSA key: {exc.__class__.__name__}") from None


def _unverified_header(token: str) -> dict[str, Any]:
    first = token.split(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
    except (ValueError, json.JSONDecodeError):
        raise TrustError("not a JWT") from None
    if not isinstance(header, dict):
        raise TrustError("not a JWT")
    return header


@dataclass(frozen=True)
class Enrolment:
    """What the anchor pins for a member: its federation key (the one its configuration is signed with)."""

    entity_id: str
    node: str
    jwks: dict[str, Any]  # {"keys": [the member's federation key, public members only]}

    @property
    def thumbprints(self) -> list[str]:
        return [jwk_thumbprint(k) for k in self.jwks["keys"]]

    def require(self, expected: Iterable[str]) -> None:
        """TrustError unless the pinned keys are exactly the `expected` thumbprints (nothing expected: no check)."""
        want = {t.strip() for t in expected if t.strip()}
        if want and want != set(self.thumbprints):
            raise TrustError(f"{self.entity_id}'s federation key has the thumbprint {', '.join(self.thumbprints)}, "
                             f"not {', '.join(sorted(want))}")


def inspect_configuration(token: str) -> Enrolment:
    """A node's entity configuration checked on its own: signed by one of the RSA keys in its own `jwks` (the one
    its header's `kid` names), a valid entity statement (typ, exp, iat), `iss` = `sub`, a node id. TrustError else."""
    token = token.strip()
    header, claims = _unverified_header(token), unverified_claims(token)
    if not isinstance(claims, dict):
        raise TrustError("not an entity statement")
    kid = header.get("kid")
    keys = (claims.get("jwks") or {}).get("keys") if isinstance(claims.get("jwks"), dict) else None
    if not isinstance(keys, list):
        raise TrustError("the configuration publishes no keys (jwks)")
    signer = [k for k in keys if isinstance(k, dict) and k.get("kty") == "RSA" and kid and k.get("kid") == kid]
    if len(signer) != 1:
        raise TrustError(f"the configuration is not signed by one of the keys it publishes (kid {kid!r})")
    try:
        public = {**RSAKey.import_key(signer[0]).as_dict(private=False), "kid": kid, "use": "sig", "alg": "RS256"}
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise TrustError(f"the configuration's key is not an RSA key: {exc.__class__.__name__}") from None
    own = verify_statement(token, {"keys": [public]})
    sub = own.get("sub")
    if not isinstance(sub, str) or own.get("iss") != sub:
        raise TrustError("the configuration is not self-issued (iss ≠ sub)")
    node = ((own.get("metadata") or {}).get("towntip_node") or {}).get("node_id")
    if not isinstance(node, str) or not node:
        raise TrustError("the configuration names no node id")
    return Enrolment(sub, node, {"keys": [public]})


def check_configuration(token: str, entity_id: str, node: str) -> Enrolment:
    """`inspect_configuration`, and it is about `entity_id` and `node` (what the anchor's operator enrols)."""
    entity_id = entity_id.rstrip("/")
    found = inspect_configuration(token)
    if found.entity_id != entity_id:
        raise TrustError(f"the configuration is about {found.entity_id!r}, not {entity_id}")
    if found.node != node:
        raise TrustError(f"the configuration names the node id {found.node!r}, not {node!r}")
    return found


def _configuration_url(entity_id: str) -> str:
    return entity_id.rstrip("/") + WELL_KNOWN


def _configuration_text(url: str, r: httpx.Response) -> str:
    if r.status_code != 200:
        raise TrustError(f"{url} answered {r.status_code}")
    return r.text.strip()


def fetch_configuration_sync(entity_id: str, timeout: float = 10) -> str:
    url = _configuration_url(entity_id)
    try:
        r = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise TrustError(f"cannot reach {url}: {exc.__class__.__name__}") from None
    return _configuration_text(url, r)


async def fetch_configuration(entity_id: str, client: httpx.AsyncClient | None = None, timeout: float = 10) -> str:
    url = _configuration_url(entity_id)
    try:
        if client is not None:
            r = await client.get(url, timeout=timeout)
        else:
            async with httpx.AsyncClient(timeout=timeout) as own:
                r = await own.get(url)
    except httpx.HTTPError as exc:
        raise TrustError(f"cannot reach {url}: {exc.__class__.__name__}") from None
    return _configuration_text(url, r)


# ---- the trust anchor -----------------------------------------------------------------------------------------

def base_url(value: str) -> str | None:
    """An entity id as the operator typed it, as a base URL (no trailing slash), or None if it is not one."""
    v = value.rstrip("/")
    if not v.startswith(("https://", "http://")) or " " in v or "#" in v or "?" in v:
        return None
    return v


REPIN_HINT = "run `towntip federation anchor rekey --entity-id {entity}` (or `anchor add` again)"


@dataclass
class TrustAnchor:
    """The anchor's state lives in its data dir: its key (anchor-key.pem), its public JWKS for nodes
    (anchor-jwks.json) and its members (members.json: {entity id: {"node": node id, "jwks": the pinned federation
    key, "pinned_at": ISO time}}). Edited by the CLI, read per request.

    members.json of earlier versions ({entity id: node id}, no keys) is still read: such a member is kept (so
    `rekey` knows its node id) but is **not vouched for** — no statement, not listed — until its key is pinned.
    Pinning it on the first fetch instead would sign whatever answered at its URL at that moment, unwatched: the
    very hole pinning closes."""

    data_dir: Path
    entity_id: str

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pem = self.data_dir / "anchor-key.pem"
        if not pem.exists():
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
            pem.chmod(0o600)
        self.key = RSAKey.import_key(pem.read_text())
        self.kid = self.key.thumbprint()
        public = {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": "RS256"}
        (self.data_dir / "anchor-jwks.json").write_text(json.dumps({"keys": [public]}, indent=2))

    @property
    def jwks_path(self) -> Path:
        return self.data_dir / "anchor-jwks.json"

    @property
    def members_path(self) -> Path:
        return self.data_dir / "members.json"

    def records(self) -> dict[str, dict[str, Any]]:
        """{entity id: {"node": …, "jwks": … or absent}}; an entry of the old format has no "jwks"."""
        path = self.members_path
        raw = json.loads(path.read_text()) if path.exists() else {}
        out: dict[str, dict[str, Any]] = {}
        for entity, value in raw.items():
            if isinstance(value, str):  # the old format: {entity id: node id}
                out[entity] = {"node": value}
            elif isinstance(value, dict) and isinstance(value.get("node"), str):
                out[entity] = dict(value)
        return out

    @staticmethod
    def _pinned_keys(record: dict[str, Any]) -> dict[str, Any] | None:
        jwks = record.get("jwks")
        if isinstance(jwks, dict) and isinstance(jwks.get("keys"), list) and jwks["keys"]:
            return jwks
        return None

    def members(self) -> dict[str, str]:
        """{entity id: node id}, pinned or not."""
        return {entity: r["node"] for entity, r in self.records().items()}

    def pinned(self) -> dict[str, str]:
        """{entity id: node id} of the members the anchor vouches for (their keys are pinned)."""
        return {entity: r["node"] for entity, r in self.records().items() if self._pinned_keys(r)}

    def unpinned(self) -> list[str]:
        """Members of an old members.json, without pinned keys: not vouched for until `rekey`."""
        return sorted(entity for entity, r in self.records().items() if not self._pinned_keys(r))

    def thumbprints(self, entity_id: str) -> list[str]:
        record = self.records().get(entity_id.rstrip("/"))
        jwks = self._pinned_keys(record) if record else None
        return [jwk_thumbprint(k) for k in jwks["keys"]] if jwks else []

    def _save(self, members: dict[str, dict[str, Any]]) -> None:
        path = self.members_path
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(members, indent=2, sort_keys=True, ensure_ascii=False))
        tmp.replace(path)

    def pin(self, enrolment: Enrolment) -> None:
        """Vouch for the member with this key from now on (a new member, or a member's new key)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self._save({**self.records(), enrolment.entity_id.rstrip("/"): {
            "node": enrolment.node, "jwks": enrolment.jwks, "pinned_at": now}})

    async def enrol(self, entity_id: str, node: str, *, configuration: str | None = None,
                    expect: Iterable[str] = (), client: httpx.AsyncClient | None = None) -> Enrolment:
        """Pin a member's key: its configuration (fetched once now unless handed over) checked by
        `check_configuration` and, if given, against the `expect`ed thumbprints. TrustError: nothing saved."""
        token = configuration if configuration is not None else await fetch_configuration(entity_id, client)
        return self.add(entity_id, node, configuration=token, expect=expect)

    def add(self, entity_id: str, node: str, *, configuration: str | None = None,
            expect: Iterable[str] = ()) -> Enrolment:
        """`enrol` without an event loop (the CLI): the configuration handed over, or fetched once now (blocking;
        inside a running loop, `await enrol(...)` instead)."""
        token = configuration if configuration is not None else fetch_configuration_sync(entity_id)
        enrolment = check_configuration(token, entity_id, node)
        enrolment.require(expect)
        self.pin(enrolment)
        return enrolment

    def remove(self, entity_id: str) -> bool:
        members = self.records()
        found = members.pop(entity_id.rstrip("/"), None) is not None
        self._save(members)
        return found

    def configuration(self) -> str:
        now = int(time.time())
        return sign_statement(self.key, self.kid, {
            "iss": self.entity_id, "sub": self.entity_id, "iat": now, "exp": now + STATEMENT_TTL,
            "jwks": {"keys": json.loads(self.jwks_path.read_text())["keys"]},
            "metadata": {"federation_entity": {
                "federation_fetch_endpoint": f"{self.entity_id}/federation/fetch",
                "federation_list_endpoint": f"{self.entity_id}/federation/list",
                "organization_name": "TownTip trust anchor",
            }},
        })

    def subordinate(self, sub: str) -> str | None:
        """The anchor's statement about a member: the key pinned at its enrolment (nothing is fetched). None for
        a stranger; TrustError for a member without pinned keys (an old members.json)."""
        sub = sub.rstrip("/")
        record = self.records().get(sub)
        if record is None:
            return None
        jwks = self._pinned_keys(record)
        if jwks is None:
            raise TrustError(f"member {sub} has no pinned keys: {REPIN_HINT.format(entity=sub)}")
        now = int(time.time())
        return sign_statement(self.key, self.kid, {
            "iss": self.entity_id, "sub": sub, "iat": now, "exp": now + 3600, "jwks": jwks,
            "metadata": {"towntip_node": {"node_id": record["node"]}},
        })
