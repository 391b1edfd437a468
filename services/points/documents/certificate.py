"""The course certificate (修了証) as a signed statement: a compact JWS (RFC 7515) signed with Ed25519 (alg EdDSA,
RFC 8037) through joserfc, header {"alg", "kid", "typ": towntip-certificate+jws}, the kid being the key's RFC 7638
thumbprint. Anyone can check it offline with the public keys the node publishes (/certificates/jwks.json).

Tokens are the same bytes as those issued before joserfc signed them (a hand-made signer; Ed25519 signatures are
deterministic): the header in the order alg, kid, typ, and the claims as compact JSON with sorted keys and UTF-8
text, so certificates already in people's hands verify unchanged. The portal prints the PDF
(gateway/portal/courses.py) from what these claims say."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError, SecurityWarning
from joserfc.jwk import OKPKey

from towntip.kernel.contracts import courses as c

ALG = "EdDSA"


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@contextmanager
def _eddsa() -> Iterator[None]:
    """joserfc warns that RFC 9864 deprecates the name "EdDSA" for the fully specified "Ed25519". It is the same
    algorithm on this curve; the issued certificates and the published JWKS name it EdDSA, and verifiers read them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=SecurityWarning, message=".*EdDSA")
        yield


# ---- keys ---------------------------------------------------------------------------------------------------------


def new_key() -> OKPKey:
    return OKPKey.generate_key("Ed25519")


def load_key(private_pem: str) -> OKPKey:
    """A key as the service keeps it (PKCS#8 PEM, as it has been since the first certificate)."""
    return OKPKey.import_key(private_pem)


def private_pem(key: OKPKey) -> str:
    return key.as_pem(private=True).decode()


def public_x(key: OKPKey) -> str:
    return str(key.as_dict(private=False)["x"])


def key_id(key: OKPKey) -> str:
    """RFC 7638 thumbprint of the public key: the kid."""
    return key.thumbprint()


def public_jwk(kid: str, x: str) -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALG, "use": "sig"}


# ---- signing and checking -----------------------------------------------------------------------------------------


def sign(claims: dict[str, Any], kid: str, key: OKPKey | Ed25519PrivateKey) -> str:
    """The compact JWS of `claims` under `key` (a joserfc key, or a cryptography one)."""
    if isinstance(key, Ed25519PrivateKey):
        key = OKPKey(key, key)
    header = {"alg": ALG, "kid": kid, "typ": c.CERT_TYP}  # in this order: the bytes of the sorted header
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    with _eddsa():
        return jws.serialize_compact(header, payload, key, algorithms=[ALG])


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a token this service issued (not checked: it read it from its own table)."""
    return dict(json.loads(b64u_decode(token.split(".")[1])))


def check_signature(token: str, keys: dict[str, str]) -> dict[str, Any]:
    """The claims of a token signed by one of `keys` (kid -> base64url x), or ValueError saying why not."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS (three parts separated by '.')")
    try:
        header = json.loads(b64u_decode(parts[0]))
        claims = json.loads(b64u_decode(parts[1]))
        b64u_decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise ValueError("malformed token") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("malformed token")
    if header.get("alg") != ALG or header.get("typ") != c.CERT_TYP:
        raise ValueError("not a certificate of this platform (alg EdDSA, typ towntip-certificate+jws)")
    x = keys.get(str(header.get("kid")))
    if x is None:
        raise ValueError("signed with a key this node does not know")
    try:
        public = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": x})
        with _eddsa():
            jws.deserialize_compact(".".join(parts), public, algorithms=[ALG])
    except (BadSignatureError, JoseError, ValueError):
        raise ValueError("the signature does not match: the token was changed or not issued here") from None
    return claims
