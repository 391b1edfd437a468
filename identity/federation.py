"""Trust between nodes, in the spirit of OpenID Federation 1.0.

- Every node publishes its **entity configuration** at `/.well-known/openid-federation`: a JWT
  (`typ: entity-statement+jwt`) it signs itself, with its keys, its OpenID provider and relying-party metadata,
  its node id, and the trust anchor it answers to (`authority_hints`).
- The **trust anchor** (the hub or the secretariat, `TrustAnchor` below, served by `anchor_app`) vouches for
  member nodes with **subordinate statements** (`/federation/fetch?sub=<entity id>`): JWTs it signs that bind a
  member's entity id to the member's keys. It lists its members at `/federation/list`. A node it removes gets no
  statement any more.
- A node trusts another node's provider **only through that chain** (`TrustResolver.resolve`, in
  towntip/kernel/trust.py so that other services check members the same way): the anchor's
  statement about the other node, checked with the anchor's keys (given to every node out of band, a JWKS file),
  and the other node's own configuration, checked with the keys the anchor vouched for. Tampered metadata fails the
  signature; a removed node fails the fetch. Resolved chains are cached for at most `cache_seconds` (and never
  past a statement's expiry), so a removal reaches every node within that time.

Simplifications, stated: one key set per node serves both as federation keys and as the provider's signing keys;
no metadata policies or trust marks; the anchor is the only intermediate (chains are two statements long).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import RSAKey

from towntip.kernel.trust import (
    ENTITY_TYP,
    STATEMENT_TTL,
    WELL_KNOWN,
    TrustedEntity,
    TrustError,
    TrustResolver,
    sign_statement,
    unverified_claims,
)

# What nodes and services share (the chain's checks, TrustResolver) lives in towntip/kernel/trust.py; these names
# stay importable from here.
__all__ = ["ENTITY_TYP", "STATEMENT_TTL", "WELL_KNOWN", "TrustAnchor", "TrustError", "TrustResolver", "TrustedEntity",
           "anchor_app", "entity_configuration", "sign_statement", "unverified_claims"]


def entity_configuration(*, entity_id: str, node: str, key: RSAKey, kid: str, jwks: list[dict[str, Any]],
                         provider: dict[str, Any], anchor: str | None) -> str:
    """This node's self-signed entity configuration."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": entity_id, "sub": entity_id, "iat": now, "exp": now + STATEMENT_TTL,
        "jwks": {"keys": jwks},
        "metadata": {
            "openid_provider": provider,
            "openid_relying_party": {
                "client_name": f"TownTip {node}",
                "redirect_uris": [f"{entity_id}/login/federated/callback"],
                "post_logout_redirect_uris": [f"{entity_id}/"],
                "response_types": ["code"], "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none", "scope": "openid profile email regions",
            },
            "towntip_node": {"node_id": node},
        },
    }
    if anchor:
        claims["authority_hints"] = [anchor]
    return sign_statement(key, kid, claims)


# ---- the trust anchor -----------------------------------------------------------------------------------------


@dataclass
class TrustAnchor:
    """The anchor's state lives in its data dir: its key (anchor-key.pem), its public JWKS for nodes
    (anchor-jwks.json) and its members (members.json: {entity id: node id}). Edited by the CLI, read per request."""

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

    def members(self) -> dict[str, str]:
        path = self.data_dir / "members.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _save(self, members: dict[str, str]) -> None:
        path = self.data_dir / "members.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(members, indent=2, sort_keys=True))
        tmp.replace(path)

    def add(self, entity_id: str, node: str) -> None:
        self._save({**self.members(), entity_id.rstrip("/"): node})

    def remove(self, entity_id: str) -> bool:
        members = self.members()
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

    async def subordinate(self, sub: str, client: httpx.AsyncClient) -> str | None:
        """The anchor's statement about a member: the member's current keys, fetched from its own configuration."""
        sub = sub.rstrip("/")
        node = self.members().get(sub)
        if node is None:
            return None
        r = await client.get(sub + WELL_KNOWN, timeout=5)
        r.raise_for_status()
        own = unverified_claims(r.text)
        if own.get("sub") != sub or own.get("metadata", {}).get("towntip_node", {}).get("node_id") != node:
            return None
        now = int(time.time())
        return sign_statement(self.key, self.kid, {
            "iss": self.entity_id, "sub": sub, "iat": now, "exp": now + 3600, "jwks": own.get("jwks", {}),
            "metadata": {"towntip_node": {"node_id": node}},
        })


def anchor_app(anchor: TrustAnchor) -> Any:
    """The anchor's HTTP face (FastAPI): its configuration, fetch and list endpoints."""
    from fastapi import FastAPI, Query
    from fastapi.responses import JSONResponse, Response

    app = FastAPI(title="TownTip trust anchor", docs_url=None, redoc_url=None)
    client = httpx.AsyncClient()
    media = "application/entity-statement+jwt"

    @app.get(WELL_KNOWN)
    async def configuration() -> Response:
        return Response(anchor.configuration(), media_type=media)

    @app.get("/federation/fetch")
    async def fetch(sub: str = Query(max_length=500)) -> Response:
        try:
            statement = await anchor.subordinate(sub, client)
        except (httpx.HTTPError, TrustError):
            statement = None
        if statement is None:
            return JSONResponse({"error": "not_found", "error_description": "not a member of this federation"},
                                status_code=404)
        return Response(statement, media_type=media)

    @app.get("/federation/list")
    async def members() -> list[str]:
        return sorted(anchor.members())

    return app
