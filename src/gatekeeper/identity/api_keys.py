"""API keys: ``<prefix>_<key id>_<secret>``; the key id is public (for lookup), the secret is not.

Only a SHA-256 of the secret is stored. A fast hash is right here (unlike passwords): the secret
is 256 random bits, so there is nothing to brute-force, and the authorizer's hot path must stay
cheap. Comparison is constant-time. A key has a status, an optional expiry and, after a rotation,
a grace time until which it keeps working beside its replacement.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.errors import (
    ExpiredApiKey,
    InvalidApiKeySecret,
    MalformedApiKey,
    RevokedApiKey,
    RotatedApiKey,
)
from gatekeeper.identity.principal import Principal

HASH_SCHEME = "sha256"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_KEY_LENGTH = 128

KeyStatus = Literal["active", "revoked"]


class ApiKeyRecord(BaseModel):
    """What the config table holds for one key; never the secret itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    secret_hash: str
    principal_id: str = Field(min_length=1)
    tenant: str | None = None
    name: str = ""
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    status: KeyStatus = "active"
    created_at: float = 0.0
    expires_at: float | None = None
    replaced_by: str | None = None
    grace_until: float | None = Field(
        default=None, description="Set on rotation: the old key works until then."
    )
    usage_identifier: str | None = Field(
        default=None, description="API Gateway usage-plan key value returned as usageIdentifierKey."
    )


class NewApiKey(BaseModel):
    """A freshly generated key: ``plaintext`` is shown to its owner once and never stored."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    plaintext: str = Field(repr=False)
    secret_hash: str


def hash_secret(secret: str) -> str:
    return f"{HASH_SCHEME}${hashlib.sha256(secret.encode()).hexdigest()}"


def generate_key(prefix: str) -> NewApiKey:
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return NewApiKey(
        key_id=key_id, plaintext=f"{prefix}_{key_id}_{secret}", secret_hash=hash_secret(secret)
    )


def parse_key(value: str, prefix: str) -> tuple[str, str]:
    """Split a presented key into (key id, secret); the format is checked before any lookup."""
    if len(value) > MAX_KEY_LENGTH:
        raise MalformedApiKey("API key is too long")
    parts = value.split("_", 2)
    if len(parts) != 3 or parts[0] != prefix:
        raise MalformedApiKey(f"API key must look like {prefix}_<key id>_<secret>")
    _, key_id, secret = parts
    # fullmatch: ``$`` in ``match`` also accepts a trailing newline ("<id>\n" is not an id)
    if not _KEY_ID.fullmatch(key_id) or not _SECRET.fullmatch(secret):
        raise MalformedApiKey(f"API key must look like {prefix}_<key id>_<secret>")
    return key_id, secret


def check_key(record: ApiKeyRecord, secret: str, now: float) -> Principal:
    """Verify the secret first (so key state is not revealed to someone without it), then state."""
    if not hmac.compare_digest(record.secret_hash.encode(), hash_secret(secret).encode()):
        raise InvalidApiKeySecret(f"wrong secret for API key {record.key_id}")
    if record.status == "revoked":
        raise RevokedApiKey(f"API key {record.key_id} is revoked")
    if record.expires_at is not None and now >= record.expires_at:
        raise ExpiredApiKey(f"API key {record.key_id} has expired")
    if record.grace_until is not None and now >= record.grace_until:
        raise RotatedApiKey(f"API key {record.key_id} was rotated and its grace time has ended")
    return Principal(
        principal_id=record.principal_id,
        auth_method="api_key",
        tenant=record.tenant,
        key_id=record.key_id,
        roles=frozenset(record.roles),
        scopes=frozenset(record.scopes),
        usage_identifier=record.usage_identifier,
    )
