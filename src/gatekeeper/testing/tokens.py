"""Signing keys, JWKS documents and tokens for the tests and the offline demo.

Keys are generated at run time, so no private key material is ever committed. Besides honest
tokens, :func:`forge_unsigned` and :func:`forge_hmac` build the classic attack tokens (``alg:
none``; HS256 keyed with the issuer's public key) that PyJWT itself refuses to produce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.api_jws import PyJWS

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_JWS = PyJWS()


class _Default(Enum):
    KEY = "the key's own kid"


KEY_KID: Literal[_Default.KEY] = _Default.KEY
"""Default for ``mint(kid=...)``: use the signing key's kid (pass None to omit the header)."""


@dataclass(frozen=True)
class SigningKey:
    """A private key with the ``kid`` and ``alg`` its public half is published under."""

    kid: str
    alg: str
    private_key: PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK (``kid``, ``alg``, ``use: sig``), ready for a JWKS."""
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str | None = None, *, alg: str = "RS256", bits: int = 2048) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return SigningKey(kid or f"rsa-{secrets.token_hex(4)}", alg, private)


def ec_key(kid: str | None = None) -> SigningKey:
    """A P-256 key for ES256."""
    private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(kid or f"ec-{secrets.token_hex(4)}", "ES256", private)


def public_jwks(*keys: SigningKey, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A JWKS document publishing the public halves of ``keys`` (plus raw JWKs in ``extra``)."""
    published = [key.public_jwk() for key in keys]
    if extra is not None:
        published.append(dict(extra))
    return {"keys": published}


def claims_for(
    issuer: str,
    audience: str | None,
    *,
    now: float,
    subject: str = "user-1",
    ttl: float = 300,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Standard claims valid from ``now`` for ``ttl`` seconds; ``extra`` adds or overrides."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "iat": int(now),
        "exp": int(now + ttl),
        "jti": secrets.token_hex(8),
    }
    if audience is not None:
        claims["aud"] = audience
    claims.update(extra or {})
    return claims


def mint(
    claims: Mapping[str, Any],
    key: SigningKey,
    *,
    kid: str | Literal[_Default.KEY] | None = KEY_KID,
    alg: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A token signed by ``key``; ``alg``, ``headers`` and ``claims`` may lie on purpose."""
    header: dict[str, Any] = {}
    if kid is KEY_KID:
        header["kid"] = key.kid
    elif kid is not None:
        header["kid"] = kid
    header.update(headers or {})
    # PyJWS rather than jwt.encode: the latter refuses some malformed claims tests need.
    payload = json.dumps(dict(claims), separators=(",", ":")).encode()
    return _JWS.encode(payload, key.private_key, algorithm=alg or key.alg, headers=header)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    return ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )


def forge_unsigned(claims: Mapping[str, Any], *, kid: str | None = None) -> str:
    """An ``alg: none`` token with an empty signature."""
    header = {"alg": "none", "typ": "JWT"} | ({"kid": kid} if kid else {})
    return _segments(header, claims) + "."


def forge_hmac(claims: Mapping[str, Any], secret: bytes, *, kid: str | None = None) -> str:
    """An HS256 token keyed with ``secret``, e.g. the issuer's public key PEM (alg confusion)."""
    header = {"alg": "HS256", "typ": "JWT"} | ({"kid": kid} if kid else {})
    signing_input = _segments(header, claims)
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
