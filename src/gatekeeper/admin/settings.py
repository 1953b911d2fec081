"""Settings of the admin function, read from the environment once (``GATEKEEPER_<FIELD>``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from gatekeeper.config import ENV_PREFIX, Settings, SettingsError

DEFAULT_ADMIN_ROLE = "gatekeeper-admin"

ApiKeyPrefix = Annotated[str, Settings.model_fields["api_key_prefix"]]
"""The authorizer's own rule for the key prefix: the admin API and the CLI mint only keys the
authorizer accepts."""
_KEY_PREFIX: TypeAdapter[str] = TypeAdapter(ApiKeyPrefix)


def check_key_prefix(value: str) -> str:
    """``value`` if the authorizer would accept it as ``GATEKEEPER_API_KEY_PREFIX``.

    Raises ``ValueError`` naming the rule otherwise::

        check_key_prefix("gk")      # "gk"
        check_key_prefix("GK-bad")  # ValueError
    """
    try:
        return _KEY_PREFIX.validate_python(value)
    except ValidationError as exc:
        rule = exc.errors()[0]["msg"]
        raise ValueError(f"invalid API key prefix {value!r}: {rule}") from None


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
    api_key_prefix: ApiKeyPrefix = "gk"
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
