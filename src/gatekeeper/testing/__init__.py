"""Helpers shared by the test suite and the offline demo: run-time keys, tokens, a JWKS server.

Not used on the Lambda hot path; importing it pulls in ``http.server`` and key generation.
"""

from gatekeeper.testing.jwks_server import JWKS_PATH, LocalJwksServer
from gatekeeper.testing.tokens import (
    KEY_KID,
    SigningKey,
    claims_for,
    ec_key,
    forge_hmac,
    forge_unsigned,
    mint,
    public_jwks,
    rsa_key,
)

__all__ = [
    "JWKS_PATH",
    "KEY_KID",
    "LocalJwksServer",
    "SigningKey",
    "claims_for",
    "ec_key",
    "forge_hmac",
    "forge_unsigned",
    "mint",
    "public_jwks",
    "rsa_key",
]
