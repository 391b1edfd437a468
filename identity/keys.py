"""The provider's signing keys: RSA 2048 for RS256, stored in the identity service's own database.

The newest key that is not retired signs. `rotate` retires it and makes a new one; a retired key stays in the
JWKS for KEEP_RETIRED (longer than any token it signed lives: ID and access tokens live at most an hour), so
relying parties that cached the old JWKS and tokens signed before the rotation keep verifying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from identity.accounts import aware
from identity.models import signing_keys
from towntip.kernel.bus.envelope import utcnow

ALG = "RS256"
KEEP_RETIRED = timedelta(days=1)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: RSAKey  # private

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": ALG}


def _new_key() -> tuple[str, str, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key = RSAKey.import_key(pem)
    kid = key.thumbprint()  # RFC 7638: the same key always has the same kid
    return kid, pem, {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": ALG}


async def _insert_new(session: AsyncSession) -> str:
    kid, pem, jwk = _new_key()
    await session.execute(signing_keys.insert().values(
        kid=kid, alg=ALG, private_pem=pem, public_jwk=jwk, created_at=utcnow(), retired_at=None,
    ))
    return kid


async def current_key(session: AsyncSession) -> SigningKey | None:
    """The signing key, or None on a node that has made none yet (a read only)."""
    row = (await session.execute(
        select(signing_keys.c.kid, signing_keys.c.private_pem)
        .where(signing_keys.c.retired_at.is_(None)).order_by(signing_keys.c.created_at.desc()).limit(1)
    )).first()
    return None if row is None else SigningKey(row.kid, _parse(row.kid, row.private_pem))


async def active_key(session: AsyncSession) -> SigningKey:
    """The signing key, made on first use (call inside a transaction)."""
    key = await current_key(session)
    if key is None:
        await _insert_new(session)
        key = await current_key(session)
        assert key is not None
    return key


_PARSED: dict[str, RSAKey] = {}


def _parse(kid: str, pem: str) -> RSAKey:
    """Parsing an RSA private key validates it (~46 ms with OpenSSL 3): once per kid per process (a kid is the
    key's thumbprint, so its key never changes)."""
    key = _PARSED.get(kid)
    if key is None:
        key = _PARSED[kid] = RSAKey.import_key(pem)
    return key


async def published(session: AsyncSession) -> list[dict[str, Any]]:
    """The JWKS: the active key and the keys retired less than KEEP_RETIRED ago (newest first)."""
    cutoff = utcnow() - KEEP_RETIRED
    rows = (await session.execute(
        select(signing_keys.c.public_jwk, signing_keys.c.retired_at).order_by(signing_keys.c.created_at.desc())
    )).all()
    return [dict(r.public_jwk) for r in rows if r.retired_at is None or aware(r.retired_at) > cutoff]


async def rotate(session: AsyncSession) -> str:
    await session.execute(update(signing_keys).where(signing_keys.c.retired_at.is_(None)).values(retired_at=utcnow()))
    return await _insert_new(session)
