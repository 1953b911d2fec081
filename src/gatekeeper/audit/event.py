"""The audit event: one per authorization decision.

A pydantic model so it can grow (the audit pipeline maps it onto OCSF) while every producer
fills the same fields. It has no field that could hold a credential: the token, the API key
secret and signatures are never passed in.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"
AuditDecision = Literal["allow", "deny", "unauthorized"]


class AuditEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: str = SCHEMA_VERSION
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    event_type: Literal["authorization"] = "authorization"
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


def iso_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")
