"""The node's signing keys, stored in the identity service's own database (several identity processes share it;
keys are not in the data dir), by purpose:

- **provider** keys: RSA 2048 for RS256 (ID tokens, the node's signed person queries to other nodes) and EC P-256
  for ES256 (access tokens). Published as the provider's JWKS (`/oauth/jwks`, and `metadata.openid_provider.jwks`
  of the entity configuration, where other nodes take them from);
- the **federation** key (OpenID Federation 1.0's entity key): RSA 2048, RS256, it signs the node's entity
  configuration and is its `jwks`, the key the trust anchor pins at enrolment. It signs nothing else, and it is
  not a provider key: an ID token it signed is refused.

Access tokens are signed ES256 (RFC 9068 lets a provider choose; RS256 access tokens of an earlier version still
verify until they expire): an RS256 signature costs ~0.6-1 ms of CPU here, an ES256 one ~0.05 ms, and a refresh
signs one access token, so the RSA signature was half of the identity service's CPU per refresh. ID tokens stay
RS256, the algorithm every OpenID Connect client must accept.

The newest provider key of each kind that is not retired signs. `rotate` (`towntip identity keys rotate`, routine)
retires them and makes a new pair; a retired key stays in the JWKS for KEEP_RETIRED (longer than any token it signed
lives: ID and access tokens live at most an hour), so relying parties that cached the old JWKS and tokens signed
before the rotation keep verifying. It leaves the federation key alone: other nodes get the new provider keys
through the configuration the pinned federation key signs, with no re-pin. A node whose keys were made before ES256
gets its EC key the next time a key is made on use (`active_key`).

`rotate_federation` (`towntip identity keys rotate-federation`, deliberate) retires the federation key and makes a
new one: the other nodes refuse this node until the anchor's operator pins the new key (`towntip federation anchor
rekey --expect-thumbprint=<kid>`). A node upgraded from a version with one key set (migration 0005) starts with its
provider RS256 key of then as its federation key (the key its anchor pinned), so the upgrade needs no re-pin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import Row, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from identity.accounts import aware
from identity.models import signing_keys
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow

ALG = "RS256"  # ID tokens, person queries; the federation key's entity configuration
AT_ALG = "ES256"  # access tokens
ACCESS_TOKEN_ALGS = [AT_ALG, ALG]  # what an access token of this provider may be signed with
KEEP_RETIRED = timedelta(days=1)
PROVIDER, FEDERATION = "provider", "federation"  # signing_keys.purpose


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: RSAKey  # private, RS256
    at_kid: str | None = None
    at_key: ECKey | None = None  # private, ES256; None on a node whose EC key is not made yet

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": ALG}

    def access_token_key(self) -> tuple[str, str, RSAKey | ECKey]:
        """(alg, kid, key) that signs access tokens."""
        if self.at_key is not None and self.at_kid is not None:
            return AT_ALG, self.at_kid, self.at_key
        return ALG, self.kid, self.key


def _new_key(alg: str) -> tuple[str, str, dict[str, Any]]:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) if alg == ALG
        else ec.generate_private_key(ec.SECP256R1()))
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key: RSAKey | ECKey = RSAKey.import_key(pem) if alg == ALG else ECKey.import_key(pem)
    kid = key.thumbprint()  # RFC 7638: the same key always has the same kid
    return kid, pem, {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": alg}


async def _insert_new(session: AsyncSession | AsyncConnection, alg: str = ALG, purpose: str = PROVIDER) -> str:
    kid, pem, jwk = _new_key(alg)
    await session.execute(signing_keys.insert().values(
        kid=kid, alg=alg, private_pem=pem, public_jwk=jwk, created_at=utcnow(), retired_at=None, purpose=purpose,
    ))
    return kid


_PROVIDER = signing_keys.c.purpose == PROVIDER
_FEDERATION = signing_keys.c.purpose == FEDERATION


async def current_key(session: AsyncSession | AsyncConnection) -> SigningKey | None:
    """The provider's signing keys, or None on a node that has made no RSA key yet (a read only)."""
    rows = (await session.execute(
        select(signing_keys.c.kid, signing_keys.c.alg, signing_keys.c.private_pem)
        .where(_PROVIDER, signing_keys.c.retired_at.is_(None)).order_by(signing_keys.c.created_at.desc())
    )).all()
    newest: dict[str, Row[Any, Any, Any]] = {}
    for row in rows:
        newest.setdefault(row.alg, row)
    rsa_row, ec_row = newest.get(ALG), newest.get(AT_ALG)
    if rsa_row is None:
        return None
    return SigningKey(rsa_row.kid, _parse(rsa_row.kid, rsa_row.private_pem, ALG),
                      ec_row.kid if ec_row else None,
                      _parse(ec_row.kid, ec_row.private_pem, AT_ALG) if ec_row else None)


async def active_key(session: AsyncSession | AsyncConnection) -> SigningKey:
    """The provider's signing keys, made on first use (call inside a transaction)."""
    key = await current_key(session)
    if key is None or key.at_key is None:
        if key is None:
            await _insert_new(session, ALG)
        await _insert_new(session, AT_ALG)
        key = await current_key(session)
        assert key is not None and key.at_key is not None
    return key


async def load(sessions: async_sessionmaker[AsyncSession]) -> SigningKey:
    """The provider's signing keys, read outside a transaction (on SQLite a transaction takes the write lock); made
    in a write only on a node's first use."""
    async with sessions() as s:
        key = await current_key(s)
    if key is None or key.at_key is None:
        async with sessions() as s, s.begin():
            key = await active_key(s)
    return key


_PARSED: dict[str, Any] = {}


def _parse(kid: str, pem: str, alg: str) -> Any:
    """Parsing an RSA private key validates it (~46 ms with OpenSSL 3): once per kid per process (a kid is the
    key's thumbprint, so its key never changes)."""
    key = _PARSED.get(kid)
    if key is None:
        key = _PARSED[kid] = RSAKey.import_key(pem) if alg == ALG else ECKey.import_key(pem)
    return key


async def published(session: AsyncSession) -> list[dict[str, Any]]:
    """The provider's JWKS: the active keys and the keys retired less than KEEP_RETIRED ago (newest first). Never
    the federation key (unless it is also a provider key: a node upgraded to migration 0005, until that key's day
    as a retired provider key is over)."""
    cutoff = utcnow() - KEEP_RETIRED
    rows = (await session.execute(
        select(signing_keys.c.public_jwk, signing_keys.c.retired_at).where(_PROVIDER)
        .order_by(signing_keys.c.created_at.desc())
    )).all()
    return [dict(r.public_jwk) for r in rows if r.retired_at is None or aware(r.retired_at) > cutoff]


async def rotate(session: AsyncSession) -> str:
    """Retire the provider's signing keys and make a new pair; returns the new RSA key's kid (the EC key's is in the
    JWKS). The federation key stays: the anchor's pin keeps holding."""
    await session.execute(update(signing_keys).where(_PROVIDER, signing_keys.c.retired_at.is_(None))
                          .values(retired_at=utcnow()))
    kid = await _insert_new(session, ALG)
    await _insert_new(session, AT_ALG)
    return kid


# ---- the federation key ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FederationKey:
    kid: str  # its RFC 7638 thumbprint: what the anchor's operator compares (`--expect-thumbprint`)
    key: RSAKey  # private, RS256

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": ALG}


async def current_federation_key(session: AsyncSession) -> FederationKey | None:
    """The federation key, or None on a node that has made none yet (a read only)."""
    row = (await session.execute(
        select(signing_keys.c.kid, signing_keys.c.private_pem)
        .where(_FEDERATION, signing_keys.c.retired_at.is_(None))
        .order_by(signing_keys.c.created_at.desc(), signing_keys.c.kid).limit(1)
    )).first()
    return FederationKey(row.kid, _parse(row.kid, row.private_pem, ALG)) if row is not None else None


async def _serialise_federation_key(session: AsyncSession) -> None:
    """PostgreSQL: one transaction at a time makes or changes the federation key (several identity processes share
    the database; two keys made at once would leave the anchor pinning the one that loses). SQLite: one writer."""
    if db.dialect_of(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('identity.federation_key:' "
                                   "|| current_schema()))"))


async def federation_key(session: AsyncSession) -> FederationKey:
    """The federation key, made on first use (call inside a transaction)."""
    key = await current_federation_key(session)
    if key is None:
        await _serialise_federation_key(session)
        key = await current_federation_key(session)  # made by another process meanwhile?
        if key is None:
            await _insert_new(session, ALG, FEDERATION)
            key = await current_federation_key(session)
            assert key is not None
    return key


async def rotate_federation(session: AsyncSession) -> str:
    """Retire the federation key and make a new one; returns its kid (its RFC 7638 thumbprint). The other nodes
    refuse this node until the trust anchor pins it (`towntip federation anchor rekey --expect-thumbprint=<kid>`).
    The retired key is kept (not published: a configuration is signed by one key, the one the anchor pinned)."""
    await _serialise_federation_key(session)
    await session.execute(update(signing_keys).where(_FEDERATION, signing_keys.c.retired_at.is_(None))
                          .values(retired_at=utcnow()))
    return await _insert_new(session, ALG, FEDERATION)
