"""Limit rules: who is counted (scope), which requests (match), how many per window, and how.

Shaped after Envoy's ratelimit descriptors: a rule applies to a request when its match fits;
it is counted per *scope key* (the tenant, the principal, the API key, the source IP, …). Every
rule that applies is enforced and the most restrictive answer wins. ``shadow`` rules are
counted and reported but never reject, to watch a new limit before enforcing it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatekeeper.rbac.patterns import Methods, PathPattern

Scope = Literal["global", "tenant", "principal", "api_key", "ip", "role"]
Window = Literal["second", "minute", "hour", "day"]
Algorithm = Literal["fixed_window", "sliding_window", "token_bucket"]
Mode = Literal["exact", "leased"]
OnError = Literal["open", "closed"]

WINDOW_SECONDS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class RuleMatch(BaseModel):
    """Which requests a rule counts; the path uses the RBAC pattern syntax."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_id: str | None = None
    stage: str | None = None
    methods: Methods = ("*",)
    path: PathPattern = "/**"


class LimitRule(BaseModel):
    """One limit, e.g. "100 requests per minute per API key on POST /login"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: str
    description: str = ""
    scope: Scope
    role: str | None = Field(
        default=None, description="scope 'role': applies to holders of this role, per principal"
    )
    match: RuleMatch = RuleMatch()
    limit: int = Field(ge=1, le=10_000_000)
    window: Window
    algorithm: Algorithm = "fixed_window"
    burst: int | None = Field(
        default=None, ge=1, description="token bucket capacity (default: the limit)"
    )
    mode: Mode = "exact"
    on_error: OnError = Field(
        default="open", description="when the counters table fails: allow (open) or deny"
    )
    shadow: bool = False
    enabled: bool = True

    @field_validator("rule_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError("rule_id: lower-case letters, digits, '.', '_' or '-' (max 64)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LimitRule:
        if (self.scope == "role") != (self.role is not None):
            raise ValueError("'role' is required for scope 'role' and only allowed there")
        if self.burst is not None and self.algorithm != "token_bucket":
            raise ValueError("'burst' applies to the token_bucket algorithm only")
        if self.mode == "leased" and self.algorithm != "fixed_window":
            raise ValueError("leased mode is supported for the fixed_window algorithm")
        return self

    @property
    def window_seconds(self) -> int:
        return WINDOW_SECONDS[self.window]
