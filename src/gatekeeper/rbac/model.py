"""Roles, permissions and path patterns: the data RBAC decisions are made over.

Path pattern syntax (validated when a permission is built, so bad rules never reach a request):

- ``/orders``          a literal path
- ``/orders/{id}``     ``{name}`` matches exactly one segment
- ``/orders/*``        ``*`` matches exactly one segment
- ``/orders/**``       ``**`` (last segment only) matches zero or more segments: ``/orders``,
                       ``/orders/1``, ``/orders/1/items``
- ``/t/{tenant}/x``    ``{tenant}`` is reserved: it matches only the caller's own tenant

Methods are HTTP verbs or ``*`` (any). A permission may be limited to one API id and/or stage,
and may require OAuth scopes (``requires_scopes``): it then applies only to a caller whose
credential carries every one of them (a JWT's ``scope``/``scp``, an API key's stored scopes), so
a credential's scopes cap what its roles allow.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatekeeper.identity.mtls import CertMapping, CertRevocation
from gatekeeper.identity.principal import SCOPE_TOKEN
from gatekeeper.identity.signatures import SigningKeyRecord
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.patterns import (
    DEFAULT_TENANT,
    HTTP_METHODS,
    LITERAL_SEGMENT,
    TENANT_PARAM,
    HttpMethod,
    Methods,
    PathPattern,
    Segment,
    parse_pattern,
    parsed_pattern,
    path_matches,
    split_path,
)

__all__ = [
    "DEFAULT_TENANT",
    "HTTP_METHODS",
    "TENANT_PARAM",
    "ApiRoutes",
    "ClaimMapping",
    "ConfigSnapshot",
    "HttpMethod",
    "LimitRule",
    "Permission",
    "Role",
    "RoleAssignment",
    "Segment",
    "parse_pattern",
    "parse_route",
    "parsed_pattern",
    "path_matches",
    "split_path",
]

Effect = Literal["allow", "deny"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


class Permission(BaseModel):
    """One rule of a role: allow or deny ``methods`` on ``path`` (optionally one API/stage)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    effect: Effect = "allow"
    methods: Methods = ("*",)
    path: PathPattern
    api_id: str | None = None
    stage: str | None = None
    requires_scopes: tuple[str, ...] = Field(
        default=(),
        exclude_if=lambda value: not value,  # stored documents stay as they were without it
        description="OAuth scopes the credential must carry, all of them, for this permission "
        "to apply to the caller (allow permissions only).",
    )

    @field_validator("requires_scopes")
    @classmethod
    def _scope_tokens(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for scope in value:
            if not SCOPE_TOKEN.match(scope):
                raise ValueError(f"invalid scope {scope[:64]!r} (RFC 6749 scope-token)")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _allow_only_scopes(self) -> Permission:
        if self.effect == "deny" and self.requires_scopes:
            # a deny that only binds callers holding a scope would give more to callers with
            # fewer scopes: never a widening, so refused
            raise ValueError("requires_scopes is for allow permissions only")
        return self

    def scoped_for(self, scopes: frozenset[str]) -> bool:
        """Whether the permission applies to a caller with these scopes."""
        return all(scope in scopes for scope in self.requires_scopes)

    @property
    def segments(self) -> tuple[Segment, ...]:
        return parsed_pattern(self.path)

    def applies_to(self, api_id: str, stage: str) -> bool:
        return (self.api_id in (None, api_id)) and (self.stage in (None, stage))

    def matches(self, method: str, path: tuple[str, ...], tenant: str | None) -> bool:
        return ("*" in self.methods or method in self.methods) and path_matches(
            self.segments, path, tenant
        )


class Role(BaseModel):
    """A named set of permissions; ``inherits`` pulls in other roles' permissions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    permissions: tuple[Permission, ...] = ()
    inherits: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"invalid role name {value!r}")
        return value

    @model_validator(mode="after")
    def _not_self(self) -> Role:
        if self.name in self.inherits:
            raise ValueError(f"role {self.name!r} cannot inherit itself")
        return self


class ClaimMapping(BaseModel):
    """Grant ``roles`` to JWT callers whose claim ``claim`` contains ``value``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claim: str = Field(min_length=1)
    value: str = Field(min_length=1)
    roles: tuple[str, ...] = Field(min_length=1)
    issuer: str | None = Field(default=None, description="Issuer name; None means any issuer.")


class RoleAssignment(BaseModel):
    """The roles a principal holds in one tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    principal_id: str = Field(min_length=1)
    tenant: str = Field(min_length=1)
    roles: tuple[str, ...] = ()


class ApiRoutes(BaseModel):
    """The routes of one API stage, so a policy can be checked against every one of them.

    Routes are ``"VERB /path"`` with ``{param}`` segments (``{proxy+}`` for greedy), exactly as
    API Gateway defines them; ``ANY`` stands for every verb.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_id: str = Field(min_length=1)
    stage: str = Field(min_length=1)
    routes: tuple[str, ...] = ()

    @field_validator("routes")
    @classmethod
    def _valid_routes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for route in value:
            parse_route(route)
        return value


_ROUTE_PARAM = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\+?\}$")


DEFAULT_ROUTE = "$default"
"""An HTTP API's catch-all route: every verb, every path not matched by another route."""


def parse_route(route: str) -> tuple[str, str]:
    """Split ``"GET /orders/{id}"`` into verb and path; raises ``ValueError`` when malformed.

    ``$default`` reads as ``ANY /{proxy+}`` (it also takes ``/``, which callers that need the
    exact set, like the policy builder, handle themselves).
    """
    if route.strip() == DEFAULT_ROUTE:
        return "ANY", "/{proxy+}"
    verb, sep, path = route.strip().partition(" ")
    verb = verb.upper()
    if not sep or verb not in (*HTTP_METHODS, "ANY") or not path.startswith("/"):
        raise ValueError(f"route must look like 'GET /path': {route!r}")
    for part in split_path(path):
        if not (_ROUTE_PARAM.match(part) or LITERAL_SEGMENT.match(part)):
            raise ValueError(f"invalid segment {part!r} in route {route!r}")
    return verb, path


class RoleCycleError(ValueError):
    """Role inheritance forms a cycle (or names a role that does not exist)."""


def check_inheritance(roles: Mapping[str, Role]) -> None:
    """Reject cycles and unknown parents so that resolution can never loop or silently widen."""
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join((*trail[trail.index(name) :], name))
            raise RoleCycleError(f"role inheritance cycle: {cycle}")
        state[name] = 1
        for parent in roles[name].inherits:
            if parent not in roles:
                raise RoleCycleError(f"role {name!r} inherits unknown role {parent!r}")
            visit(parent, (*trail, name))
        state[name] = 2

    for name in roles:
        visit(name, ())


class ConfigSnapshot(BaseModel):
    """The whole shared configuration at one version: roles, claim mappings, route catalogs,
    limit rules, certificate mappings and revocations, signing keys — everything a decision
    needs except per-principal data (assignments, API keys), loaded at once, cached by version."""

    model_config = ConfigDict(frozen=True)

    version: int = 0
    roles: dict[str, Role] = Field(default_factory=dict)
    claim_mappings: tuple[ClaimMapping, ...] = ()
    apis: tuple[ApiRoutes, ...] = ()
    limits: tuple[LimitRule, ...] = ()
    cert_mappings: tuple[CertMapping, ...] = ()
    cert_revocations: tuple[CertRevocation, ...] = ()
    signing_keys: dict[str, SigningKeyRecord] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _acyclic(self) -> ConfigSnapshot:
        for key, role in self.roles.items():
            if key != role.name:
                raise ValueError(f"role stored under {key!r} is named {role.name!r}")
        check_inheritance(self.roles)
        return self

    def expand(self, role_names: Iterable[str]) -> tuple[str, ...]:
        """The roles plus everything they inherit, in a stable order; unknown names are dropped."""
        seen: dict[str, None] = {}
        stack = [n for n in sorted(set(role_names), reverse=True) if n in self.roles]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen[name] = None
            stack.extend(sorted(self.roles[name].inherits, reverse=True))
        return tuple(seen)

    @functools.cached_property
    def required_scopes(self) -> frozenset[str]:
        """Every scope some permission requires: only these can change a caller's grants."""
        return frozenset(
            scope
            for role in self.roles.values()
            for permission in role.permissions
            for scope in permission.requires_scopes
        )

    def relevant_scopes(self, scopes: Iterable[str]) -> frozenset[str]:
        """The caller's scopes that can matter here (what grants and cached policies depend on)."""
        required = self.required_scopes
        return frozenset(scope for scope in scopes if scope in required)

    def routes_for(self, api_id: str, stage: str) -> tuple[str, ...] | None:
        """The route catalog for an API stage (``*`` stage entries apply to every stage)."""
        exact = [a for a in self.apis if a.api_id == api_id and a.stage == stage]
        wild = [a for a in self.apis if a.api_id == api_id and a.stage == "*"]
        chosen = exact or wild
        return chosen[0].routes if chosen else None
