"""The RBAC decision as pure functions: default deny, explicit deny wins.

No I/O here: the caller loads the snapshot and the principal's assignments, and these functions
decide. That keeps every rule testable without AWS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from gatekeeper.identity.principal import Principal
from gatekeeper.rbac.model import (
    DEFAULT_TENANT,
    HTTP_METHODS,
    ConfigSnapshot,
    Permission,
    RoleAssignment,
    split_path,
)

if TYPE_CHECKING:
    from gatekeeper.arn import ExecuteApiArn


class WildcardRequest(Protocol):
    """What :func:`evaluate_wildcard` reads of an access request."""

    @property
    def arn(self) -> ExecuteApiArn: ...
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...


DecisionReason = Literal["allowed", "explicit_deny", "no_matching_permission"]


@dataclass(frozen=True, slots=True)
class Grant:
    """A permission together with where it came from (``role#index``), for audit events."""

    rule_id: str
    permission: Permission


class Decision(BaseModel):
    """The outcome of RBAC for one request."""

    model_config = ConfigDict(frozen=True)

    allowed: bool
    reason: DecisionReason
    matched_rule: str | None = None


def resolve_roles(
    snapshot: ConfigSnapshot, principal: Principal, assignments: Iterable[RoleAssignment]
) -> tuple[str, ...]:
    """Direct roles + the tenant's stored assignment + claim mappings, with inheritance.

    Only the assignment for the principal's own tenant counts: a principal with roles in tenant
    A gets nothing from them when calling as tenant B.
    """
    names: set[str] = set(principal.roles)
    for assignment in assignments:
        if assignment.principal_id == principal.principal_id and (
            assignment.tenant == (principal.tenant or DEFAULT_TENANT)
        ):
            names.update(assignment.roles)
    if principal.auth_method == "jwt":
        for mapping in snapshot.claim_mappings:
            if mapping.issuer not in (None, principal.issuer):
                continue
            if mapping.value in principal.attributes.get(mapping.claim, ()):
                names.update(mapping.roles)
    return snapshot.expand(names)


def grants_for(
    snapshot: ConfigSnapshot,
    roles: Iterable[str],
    api_id: str,
    stage: str,
    scopes: Iterable[str] = (),
) -> tuple[Grant, ...]:
    """Every permission of ``roles`` that applies to this API stage and to a caller holding
    ``scopes``, tagged with its rule id.

    A permission whose ``requires_scopes`` the caller lacks does not apply to that caller at
    all: the scopes are a ceiling on what the roles allow, and whatever is built from the
    grants (the decision, the policy) is exact for this caller. Without ``scopes``, no
    scope-requiring permission applies (fail closed).
    """
    held = frozenset(scopes)
    grants: list[Grant] = []
    for name in roles:
        role = snapshot.roles.get(name)
        if role is None:
            continue
        for index, permission in enumerate(role.permissions):
            if permission.applies_to(api_id, stage) and permission.scoped_for(held):
                grants.append(Grant(f"{name}#{index}", permission))
    return tuple(grants)


def evaluate(grants: Iterable[Grant], method: str, path: str, tenant: str | None) -> Decision:
    """Decide one request: any matching deny wins, else the first matching allow, else deny."""
    segments = split_path(path)
    allow: Grant | None = None
    for grant in grants:
        if not grant.permission.matches(method.upper(), segments, tenant):
            continue
        if grant.permission.effect == "deny":
            return Decision(allowed=False, reason="explicit_deny", matched_rule=grant.rule_id)
        if allow is None:
            allow = grant
    if allow is not None:
        return Decision(allowed=True, reason="allowed", matched_rule=allow.rule_id)
    return Decision(allowed=False, reason="no_matching_permission")


_ANY_OTHER_STAGE = "\x00"  # a stage no permission can name


def evaluate_wildcard(
    snapshot: ConfigSnapshot,
    roles: Iterable[str],
    request: WildcardRequest,
    tenant: str | None,
    scopes: Iterable[str] = (),
) -> Decision:
    """The console's "Test authorizer" form: ``*`` as the stage or the verb stands for every
    value, so the request is allowed only if it is allowed for each of them (else the first
    denial is the answer). Fail closed: a test can never show more than any real request gets."""
    names = tuple(roles)
    held = frozenset(scopes)
    arn = request.arn
    stages: tuple[str, ...] = (arn.stage,)
    if arn.stage == "*":
        named = {
            p.stage
            for name in names
            if (role := snapshot.roles.get(name)) is not None
            for p in role.permissions
            if p.stage is not None
        }
        stages = (*sorted(named), _ANY_OTHER_STAGE)
    methods = HTTP_METHODS if request.method == "*" else (request.method,)
    allowed: Decision | None = None
    for stage in stages:
        grants = grants_for(snapshot, names, arn.api_id, stage, held)
        for method in methods:
            decision = evaluate(grants, method, request.path, tenant)
            if not decision.allowed:
                return decision
            allowed = allowed or decision
    assert allowed is not None
    return allowed
