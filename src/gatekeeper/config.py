"""Settings, read from the environment and validated once at cold start.

Every variable is ``GATEKEEPER_<FIELD>`` (upper case). A bad value raises :class:`SettingsError`
naming the variable, so a misconfigured deployment says exactly what to fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gatekeeper.audit.detect import DetectionSettings
from gatekeeper.identity.jwt_verifier import IssuerConfig
from gatekeeper.rate_limit.rules import LimitRule

ENV_PREFIX = "GATEKEEPER_"
_S = TypeVar("_S", bound=BaseModel)


class SettingsError(ValueError):
    """The environment does not describe a valid configuration."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    config_table: str = Field(min_length=3, description="DynamoDB config table name.")
    counters_table: str | None = Field(
        default=None, description="DynamoDB counters table (rate limits, brute-force blocks)."
    )
    brute_force_threshold: int = Field(
        default=20, ge=1, description="Failed authentications per window before a block."
    )
    brute_force_window_seconds: int = Field(default=300, ge=1, le=86_400)
    brute_force_block_seconds: int = Field(default=900, ge=1, le=7 * 86_400)
    block_cache_seconds: float = Field(
        default=5.0, ge=0, le=300, description="How long a container trusts a block lookup."
    )
    lease_max_fraction: float = Field(
        default=0.1, gt=0, le=1, description="Largest lease, as a fraction of the limit."
    )
    issuers: tuple[IssuerConfig, ...] = Field(
        default=(), description="JSON list of trusted JWT issuers."
    )
    config_refresh_seconds: float = Field(
        default=5.0, ge=0, le=300, description="Upper bound for a rule change to take effect."
    )
    api_key_prefix: str = Field(default="gk", pattern=r"^[a-z][a-z0-9]{1,9}$")
    tenant_header: str = Field(default="x-tenant-id", min_length=1)
    websocket_token_parameter: str = Field(
        default="token",
        pattern=r"^[A-Za-z0-9_.-]{0,64}$",
        description="Query-string parameter a WebSocket $connect may carry its credential in "
        "(browsers cannot set headers there); empty: headers only. Never read for other events.",
    )
    rate_limit_response: Literal["deny", "flag"] = Field(
        default="deny",
        description="deny: a 403 carrying Retry-After; flag: allow with rateLimited=true so "
        "the integration answers 429 (only safe where every integration honours the flag).",
    )
    http_api_response: Literal["simple", "iam"] = Field(
        default="simple", description="HTTP API (payload 2.0) answer format."
    )
    usage_identifier_key: bool = Field(
        default=False, description="Return usageIdentifierKey for API-key callers."
    )
    mtls: bool = Field(
        default=False,
        description="Read the client certificate of mutual-TLS requests (a custom domain with a "
        "truststore): check validity and revocation, map it to a principal, bind tokens to it. "
        "Off: certificates in events are ignored.",
    )
    signature_max_age_seconds: float = Field(
        default=300, gt=0, le=3600, description="Oldest 'created' a signed request may carry."
    )
    signature_clock_skew_seconds: float = Field(
        default=30, ge=0, le=300, description="Tolerance for signers' clocks (both directions)."
    )
    policy_max_bytes: int = Field(default=6144, ge=1024, le=8192)
    response_max_bytes: int = Field(
        default=8192,
        ge=2048,
        le=65_536,
        description="Bound on the whole authorizer response (policy and context, as JSON); a "
        "larger one is replaced by a Deny of the request (response_too_large).",
    )
    cache_max_entries: int = Field(default=10_000, ge=1)
    dynamodb_endpoint: str | None = Field(
        default=None, description="Override the DynamoDB endpoint (local testing)."
    )
    audit_transport: Literal["log", "kinesis"] = Field(
        default="log", description="Audit events as log lines, or put to Kinesis directly."
    )
    audit_stream: str | None = Field(
        default=None, description="Kinesis stream name or ARN (audit_transport=kinesis)."
    )
    audit_batch_size: int = Field(
        default=1, ge=1, le=500, description="Events per PutRecords; >1 buffers across calls."
    )

    @model_validator(mode="after")
    def _response_fits_policy(self) -> Settings:
        if self.response_max_bytes < self.policy_max_bytes + 1024:
            raise ValueError(
                f"{ENV_PREFIX}RESPONSE_MAX_BYTES must leave 1024 bytes beside POLICY_MAX_BYTES "
                "for the principal id and the context"
            )
        return self

    @model_validator(mode="after")
    def _audit_stream_required(self) -> Settings:
        if self.audit_transport == "kinesis" and not self.audit_stream:
            raise ValueError(
                f"{ENV_PREFIX}AUDIT_STREAM is required when AUDIT_TRANSPORT is kinesis"
            )
        return self

    default_limits: tuple[LimitRule, ...] = Field(
        default=(),
        description="JSON list of limit rules applied when the config table has none by that id.",
    )

    @field_validator("issuers", "default_limits", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else ()
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return _from_env(cls, environ)


def _from_env(cls: type[_S], environ: Mapping[str, str] | None) -> _S:
    """``GATEKEEPER_<FIELD>`` variables → ``cls``, errors naming the variables."""
    env = os.environ if environ is None else environ
    raw = {
        name: env[f"{ENV_PREFIX}{name.upper()}"]
        for name in cls.model_fields
        if f"{ENV_PREFIX}{name.upper()}" in env
    }
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            (f"{ENV_PREFIX}{str(err['loc'][0]).upper()}" if err["loc"] else "settings")
            + (f"[{'.'.join(str(p) for p in err['loc'][1:])}]" if len(err["loc"]) > 1 else "")
            + f": {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None


class AuditSinkSettings(BaseModel):
    """The audit sink function's settings (same ``GATEKEEPER_`` variables convention)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    audit_bucket: str = Field(min_length=3, description="S3 bucket of the archive.")
    audit_prefix: str = Field(default="", description="Key prefix inside the bucket, e.g. audit/.")
    audit_signing_key_id: str | None = Field(
        default=None, description="KMS asymmetric key (RSA, SIGN_VERIFY) signing the digests."
    )
    audit_digest_interval_seconds: float = Field(default=3600.0, ge=0, le=86_400)
    audit_dedup_window: int = Field(default=2000, ge=0, le=100_000)
    audit_object_lock_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description="Object Lock compliance retention (days) of each archive object, quarantine "
        "marker and digest as written (not of the state); the bucket needs Object Lock.",
    )
    audit_alert_bus: str | None = Field(
        default=None, description="EventBridge bus for security alerts (none: no alerts)."
    )
    counters_table: str | None = Field(
        default=None, description="Counters table: detection windows and IP blocks."
    )
    audit_detection: DetectionSettings = Field(default_factory=DetectionSettings)

    @field_validator("audit_detection", mode="before")
    @classmethod
    def _json_object(cls, value: object) -> object:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuditSinkSettings:
        return _from_env(cls, environ)
