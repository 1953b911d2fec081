"""Settings of the admin function, read from the environment once (``GATEKEEPER_<FIELD>``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gatekeeper.config import ENV_PREFIX, SettingsError

DEFAULT_ADMIN_ROLE = "gatekeeper-admin"


class AdminSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    config_table: str = Field(min_length=3, description="DynamoDB config table name.")
    counters_table: str | None = Field(
        default=None, description="DynamoDB counters table (usage and blocks)."
    )
    admin_roles: frozenset[str] = Field(
        default=frozenset({DEFAULT_ADMIN_ROLE}),
        description="Comma-separated roles that may change the configuration through the "
        "project's authorizer (IAM callers always may; IAM policy is their gate).",
    )
    api_key_prefix: str = Field(default="gk", pattern=r"^[a-z][a-z0-9]{1,9}$")
    dynamodb_endpoint: str | None = None

    @field_validator("admin_roles", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(r.strip() for r in value.split(",") if r.strip())
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AdminSettings:
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
                f"{ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']}" for err in exc.errors()
            )
            raise SettingsError(f"invalid configuration: {problems}") from None
