"""Request and response bodies of the admin API that are not the domain models themselves.

Roles, assignments, route catalogs and limit rules travel as their domain models
(:class:`~gatekeeper.rbac.model.Role`, …; ``extra="forbid"``, so unknown fields are refused).
Models here hold what the server owns (key ids, hashes, timestamps) apart from what a client
may send: a create body simply has no field for them.
"""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.identity.api_keys import ApiKeyRecord, KeyStatus
from gatekeeper.identity.mtls import CertMapping, CertRevocation
from gatekeeper.identity.signatures import SigningKeyRecord
from gatekeeper.rbac.model import ClaimMapping

T = TypeVar("T")

MAX_GRACE_SECONDS = 30 * 86_400
MAX_BLOCK_SECONDS = 30 * 86_400


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = None


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = Field(default=None, description="The offending input, dotted.")


class ErrorBody(BaseModel):
    error: ErrorDetail


class ClaimMappingView(ClaimMapping):
    """A claim mapping and its server-assigned id (derived from issuer, claim and value)."""

    id: str


class CertMappingView(CertMapping):
    """A client-certificate mapping rule and its id (``<match>-<hash of the value>``)."""

    id: str


class CertRevocationView(CertRevocation):
    """A revoked client certificate and its id (``sha256-<fingerprint>`` or ``serial-<hash>``)."""

    id: str


SigningKeyState = Literal["active", "revoked", "expired"]


class SigningKeyView(SigningKeyRecord):
    """A registered request-signing public key, its state now and its SHA-256 fingerprint
    (of the DER SubjectPublicKeyInfo, as ``openssl pkey -pubin -outform DER | sha256sum``)."""

    state: SigningKeyState
    fingerprint: str


# --- API keys ---------------------------------------------------------------------------------
class KeyCreate(BaseModel):
    """What a client may choose for a new key; id, secret, hash and timestamps are the server's."""

    model_config = ConfigDict(extra="forbid")

    principal_id: str = Field(min_length=1, max_length=256)
    tenant: str | None = Field(default=None, min_length=1, max_length=128)
    name: str = Field(default="", max_length=256)
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    expires_at: float | None = Field(default=None, gt=0, description="Epoch seconds.")
    usage_identifier: str | None = Field(default=None, min_length=1, max_length=256)


class KeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="How long the old key keeps working.",
    )


KeyState = Literal["active", "revoked", "expired", "in_grace", "retired"]


class KeyView(BaseModel):
    """A key as the API shows it: never the secret, nor its hash."""

    key_id: str
    principal_id: str
    tenant: str | None
    name: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    status: KeyStatus
    state: KeyState
    created_at: float
    expires_at: float | None
    replaced_by: str | None
    grace_until: float | None
    usage_identifier: str | None

    @classmethod
    def of(cls, record: ApiKeyRecord, now: float) -> KeyView:
        state: KeyState = "active"
        if record.status == "revoked":
            state = "revoked"
        elif record.expires_at is not None and now >= record.expires_at:
            state = "expired"
        elif record.grace_until is not None:
            state = "in_grace" if now < record.grace_until else "retired"
        return cls(state=state, **record.model_dump(exclude={"secret_hash"}, exclude_unset=False))


class KeyCreated(BaseModel):
    """The only response that ever carries a key's plaintext: store it now, it is not kept."""

    key: KeyView
    api_key: str = Field(description="The plaintext key, shown exactly once.")


class KeyRotated(BaseModel):
    old: KeyView
    new: KeyView
    api_key: str = Field(description="The new key's plaintext, shown exactly once.")


# --- usage and blocks -------------------------------------------------------------------------
class WindowUsage(BaseModel):
    window_start: int
    count: int


class UsageView(BaseModel):
    rule_id: str
    scope_key: str
    limit: int
    window_seconds: int
    current_window_start: int
    current_count: int
    remaining: int
    windows: list[WindowUsage]
    bucket_tat_ms: int | None = None


class UsageReset(BaseModel):
    rule_id: str
    scope_key: str
    deleted_items: int


class BlockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: int = Field(ge=1, le=MAX_BLOCK_SECONDS, description="Block duration from now.")
    reason: str = Field(default="manual", min_length=1, max_length=256)


class BlockView(BaseModel):
    ip: str
    until: int
    reason: str
    active: bool
