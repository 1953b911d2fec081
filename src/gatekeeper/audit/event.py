"""The audit event: one per authorization decision (and, later, per admin change).

This is the producer's model: flat, cheap to build on the authorizer's hot path, and carried
as-is on the wire (the ``audit`` key of a log line, or a Kinesis record). The audit sink
validates it against this same model and maps it onto OCSF (:mod:`gatekeeper.audit.ocsf`) for
the archive, so the hot path pays nothing for the richer shape.

Versioning: ``schema_version`` is ``MAJOR.MINOR``. A minor version only adds optional fields; the
sink accepts any minor of its major (and the bare ``"1"`` of the first release) and quarantines
anything else. Deploy the sink before producers that emit a new minor version: the model
forbids unknown fields, so an older sink would quarantine (never drop) the newer events.

No field can hold a credential: tokens, API key secrets and signatures are never passed in, and
the sink redacts again in case a free-text field (path, user agent) carries one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_MAJOR = "1"
SCHEMA_VERSION = "1.2"  # 1.2: event_shape
AuditDecision = Literal["allow", "deny", "unauthorized"]
AuditEventType = Literal["authorization", "admin_change"]


class RateLimitInfo(BaseModel):
    """The rate-limit rule that decided (or was closest to deciding) a request.

    Filled by the rate limiter; ``limited`` is true when this rule rejected the request.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: str
    limited: bool = False
    counter: int | None = Field(default=None, description="Counter value after this request.")
    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = Field(default=None, description="Until the window resets.")
    retry_after_seconds: float | None = Field(default=None, description="Sent as Retry-After.")
    shadow: bool = Field(default=False, description="Rule observed, not enforced.")
    shadow_limited: tuple[str, ...] = Field(
        default=(), description="Shadow rules that would have rejected this request."
    )
    errors: tuple[str, ...] = Field(
        default=(), description="Rules whose counters failed (their on_error policy applied)."
    )


class AdminChange(BaseModel):
    """What an admin change did (the admin API fills it; ``decision`` is its outcome)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: str = Field(description="create, update, delete, revoke, rotate, reset, ...")
    resource_type: str | None = Field(default=None, description="e.g. role, api_key, block.")
    target: str | None = Field(default=None, description="e.g. role name or key id.")
    actor_kind: str | None = Field(default=None, description="iam, authorizer or cli.")
    source: str | None = Field(default=None, description="api or cli.")
    before_digest: str | None = Field(default=None, description="SHA-256 of the item before.")
    after_digest: str | None = Field(default=None, description="SHA-256 of the item after.")
    config_version_before: int | None = None
    config_version_after: int | None = None


class AuditEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: str = SCHEMA_VERSION
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=8, max_length=64)
    event_type: AuditEventType = "authorization"
    time: str = Field(description="ISO 8601 UTC time of the decision.")
    request_id: str | None = None
    decision: AuditDecision
    reason: str
    principal_id: str | None = None
    tenant: str | None = None
    auth_method: str | None = None
    issuer: str | None = None
    key_id: str | None = None
    roles: tuple[str, ...] = ()
    event_kind: str | None = None
    event_shape: str | None = Field(
        default=None, description="request, default_route, connect or test_invoke."
    )
    api_id: str | None = None
    stage: str | None = None
    method: str | None = None
    path: str | None = None
    route_key: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None
    matched_rule: str | None = None
    policy_scope: str | None = None
    config_version: int | None = None
    latency_ms: float
    rate_limit: RateLimitInfo | None = None
    change: AdminChange | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_major(cls, value: str) -> str:
        if value.split(".", 1)[0] != SCHEMA_MAJOR:
            raise ValueError(
                f"unsupported schema version {value!r} (this sink reads {SCHEMA_MAJOR}.x)"
            )
        return value

    @field_validator("time")
    @classmethod
    def _iso_utc(cls, value: str) -> str:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("time must carry a UTC offset")
        return value

    def epoch_ms(self) -> int:
        return int(datetime.fromisoformat(self.time).timestamp() * 1000)


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")
