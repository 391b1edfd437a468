"""A member node's side of trust between nodes, in the spirit of OpenID Federation 1.0.

Every node publishes its **entity configuration** at `/.well-known/openid-federation` (`entity_configuration`
below): a JWT (`typ: entity-statement+jwt`) it signs itself with its **federation key**, with that key as its
`jwks`, its OpenID provider metadata (with the provider's own signing keys by value,
`metadata.openid_provider.jwks`) and relying-party metadata, its node id, and the trust anchor it answers to
(`authority_hints`).

A node trusts another node's provider **only through the chain** (`TrustResolver.resolve`, in
towntip/kernel/trust.py so that other services check members the same way): the anchor's statement about the other
node, checked with the anchor's keys (given to every node out of band, a JWKS file), and the other node's own
configuration, checked with the federation key the anchor vouched for. The other node's ID tokens and signed
queries are then checked with the provider keys of that verified configuration (`TrustedEntity.provider_jwks`),
never with its federation key. Tampered metadata fails the signature; a removed node fails the fetch. Resolved
chains are cached for at most `cache_seconds` (and never past a statement's expiry), so a removal reaches every node
within that time.

The trust anchor itself (enrolment, pinned keys, subordinate statements, its HTTP face) is its own app,
towntip/anchor/: a member node never runs it.

Keys (identity/keys.py): the federation key (RSA, RS256) signs the entity configuration only; the provider's keys
(RS256 for ID tokens and person queries, ES256 for access tokens, and those retired less than a day ago) are
published in `metadata.openid_provider.jwks` and at `/oauth/jwks`. A node upgraded from a version with one key set
starts with its provider RS256 key of then as its federation key (migration 0005), so the key its anchor pinned
keeps holding.
"""

from __future__ import annotations

import time
from typing import Any

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
__all__ = ["ENTITY_TYP", "STATEMENT_TTL", "WELL_KNOWN", "TrustError", "TrustResolver", "TrustedEntity",
           "entity_configuration", "sign_statement", "unverified_claims"]


def entity_configuration(*, entity_id: str, node: str, key: RSAKey, kid: str, jwks: list[dict[str, Any]],
                         provider: dict[str, Any], provider_jwks: list[dict[str, Any]], anchor: str | None) -> str:
    """This node's self-signed entity configuration: signed by its federation key (`key`, `kid`), which with any
    other federation keys is its `jwks` (what the anchor pins); the provider's own keys (`provider_jwks`: ID tokens,
    access tokens, person queries) go in `metadata.openid_provider.jwks`, by value (OpenID Federation 1.0: a
    provider's keys in its metadata, covered by the signature the chain checks), instead of its `jwks_uri`."""
    now = int(time.time())
    op = {k: v for k, v in provider.items() if k not in ("jwks_uri", "signed_jwks_uri")}
    claims: dict[str, Any] = {
        "iss": entity_id, "sub": entity_id, "iat": now, "exp": now + STATEMENT_TTL,
        "jwks": {"keys": jwks},
        "metadata": {
            "openid_provider": {**op, "jwks": {"keys": provider_jwks}},
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
