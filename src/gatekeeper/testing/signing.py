"""Signing a request as a server-to-server caller would (HTTP Message Signatures, RFC 9421),
with the same library the authorizer verifies with; for the demo, tests and local clients."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class _Request:
    """What the library's signer reads and writes: method, absolute URL, headers."""

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = headers


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, private: PrivateKey) -> None:
        self._private = private

    def resolve_private_key(self, key_id: str) -> Any:
        return self._private

    def resolve_public_key(self, key_id: str) -> Any:
        return self._private.public_key()


def public_pem(private: PrivateKey) -> str:
    """The public key to register for the caller (only this is stored)."""
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign_request(
    private: PrivateKey,
    *,
    key_id: str,
    method: str,
    path: str,
    nonce: str,
    created: float,
    host: str = "api.example.com",
    query: str = "",
) -> dict[str, str]:
    """The headers of a request signed over ``@method``, ``@path`` and ``@query``."""
    url = f"https://{host}{path}" + (f"?{query}" if query else "")
    request = _Request(method, url, {"Host": host})
    algorithm: Any = algorithms.ED25519
    if isinstance(private, ec.EllipticCurvePrivateKey):
        algorithm = algorithms.ECDSA_P256_SHA256
    HTTPMessageSigner(signature_algorithm=algorithm, key_resolver=_Keys(private)).sign(
        request,
        key_id=key_id,
        created=dt.datetime.fromtimestamp(int(created), dt.UTC),
        nonce=nonce,
        covered_component_ids=("@method", "@path", "@query"),
    )
    return request.headers
