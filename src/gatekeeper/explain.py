"""Why was this request allowed or denied? The authorizer's decision, step by step.

:func:`explain` is pure: given the RBAC data (from ``access.yaml`` or the config table), the
caller (a :class:`~gatekeeper.identity.principal.Principal`, however it was obtained) and a
request, it answers with an :class:`Explanation`: where each role came from (API key,
assignment, claim mapping, inheritance), every rule that matched and the one that decided, the
rate-limit rules that apply, the IAM policy the authorizer would return with its scope, and
what that policy, once cached by API Gateway, answers for every other catalogued route. It runs
the authorizer's own functions (``resolve_roles``, ``grants_for``, ``evaluate``, ``applicable``,
``build_policy``, ``iam_evaluate``), so it cannot disagree with them.

>>> from gatekeeper.rbac.model import Permission, ConfigSnapshot, Role
>>> snapshot = ConfigSnapshot(roles={"r": Role(name="r", permissions=(
...     Permission(methods=("GET",), path="/a"),))})
>>> caller = Principal(principal_id="svc:x", auth_method="api_key", roles=frozenset({"r"}))
>>> answer = explain(snapshot, (), caller, RequestSpec("GET", "/a"))
>>> answer.outcome, answer.decision.matched_rule
('allow', 'r#0')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from gatekeeper import policy_builder
from gatekeeper.arn import ExecuteApiArn
from gatekeeper.identity.principal import Principal
from gatekeeper.policy_builder import build_policy
from gatekeeper.rate_limit.limiter import applicable
from gatekeeper.rbac.evaluator import Decision, evaluate, grants_for, resolve_roles
from gatekeeper.rbac.model import (
    DEFAULT_ROUTE,
    DEFAULT_TENANT,
    HTTP_METHODS,
    ConfigSnapshot,
    RoleAssignment,
    parse_route,
    split_path,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
"""Placeholders for the ARN's region and account: RBAC and the policy's checks ignore them."""
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}$")
_GUARD = re.compile(r"(\.|%|\\|//)")
"""A Deny of ``*/../*``, ``*%2F*``, …: the policy's guards against non-canonical paths."""


def iam_evaluate(document: Mapping[str, Any], arn: str) -> str:
    """:func:`gatekeeper.policy_builder.iam_evaluate` (looked up at run time: the IAM simulator
    may live in its own module, re-exported by the policy builder)."""
    evaluate_: Callable[[Mapping[str, Any], str], str] = vars(policy_builder)["iam_evaluate"]
    return evaluate_(document, arn)


Via = Literal["api_key", "direct", "assignment", "claim_mapping", "inherited"]


@dataclass(frozen=True)
class RequestSpec:
    """The request to explain: verb and concrete path on one API stage."""

    method: str
    path: str
    api_id: str = "local"
    stage: str = "$default"
    tenant_header: str | None = None
    source_ip: str | None = None

    def arn(self) -> ExecuteApiArn:
        return ExecuteApiArn(
            region=REGION,
            account_id=ACCOUNT,
            api_id=self.api_id,
            stage=self.stage,
            method=self.method.upper(),
            path=self.path,
        )


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Identity(_Model):
    principal_id: str
    auth_method: str
    tenant: str | None
    issuer: str | None
    key_id: str | None
    scopes: tuple[str, ...]
    claims: dict[str, tuple[str, ...]]
    verified: bool
    """False when a JWT was only decoded (no issuer configured to verify it with)."""


class RoleSource(_Model):
    role: str
    via: Via
    detail: str


class MatchedRule(_Model):
    rule: str
    effect: str
    methods: tuple[str, ...]
    path: str
    missing_scopes: tuple[str, ...] = ()
    """For a rule that would match but does not apply: the scopes the credential lacks."""


class LimitInfo(_Model):
    rule_id: str
    scope: str
    scope_key: str
    limit: int
    window: str
    algorithm: str
    mode: str
    shadow: bool
    counted: bool
    """Whether this request would be counted (only requests RBAC allows are)."""
    current: int | None = None
    """Units used in the current window (online, fixed and sliding windows), if known."""


class PolicyInfo(_Model):
    scope: str
    allows_request: bool
    document: dict[str, Any]


class RouteAnswer(_Model):
    route: str
    method: str
    path: str
    cached: str
    """What the cached policy answers for this route: allow or deny."""
    rbac: str
    """What the authorizer itself would answer (RBAC): allow or deny."""

    @property
    def exact(self) -> bool:
        return self.cached == self.rbac


class Explanation(_Model):
    request: dict[str, str | None]
    identity: Identity
    roles: tuple[RoleSource, ...]
    ignored_roles: tuple[str, ...]
    """Roles named by a key, assignment or mapping that the RBAC data does not define."""
    matched: tuple[MatchedRule, ...]
    not_applied: tuple[MatchedRule, ...]
    """Rules that would match the request but require scopes the credential lacks."""
    decision: Decision
    outcome: Literal["allow", "deny"]
    reason: str
    limits: tuple[LimitInfo, ...]
    policy: PolicyInfo | None
    routes: tuple[RouteAnswer, ...]
    catalogued: bool


def identity_of(principal: Principal, *, verified: bool = True) -> Identity:
    return Identity(
        principal_id=principal.principal_id,
        auth_method=principal.auth_method,
        tenant=principal.tenant,
        issuer=principal.issuer,
        key_id=principal.key_id,
        scopes=tuple(sorted(principal.scopes)),
        claims=dict(principal.attributes),
        verified=verified,
    )


def role_sources(
    snapshot: ConfigSnapshot, principal: Principal, assignments: Iterable[RoleAssignment]
) -> tuple[tuple[RoleSource, ...], tuple[str, ...]]:
    """Where each role of :func:`resolve_roles` comes from (every source, in order), and the
    named roles the data does not define (ignored, as the authorizer ignores them)."""
    sources: list[RoleSource] = []
    direct_via: Via = "api_key" if principal.auth_method == "api_key" else "direct"
    for name in sorted(principal.roles):
        what = f"API key {principal.key_id}" if principal.key_id else "held directly"
        sources.append(RoleSource(role=name, via=direct_via, detail=what))
    tenant = principal.tenant or DEFAULT_TENANT
    for assignment in assignments:
        if assignment.principal_id == principal.principal_id and assignment.tenant == tenant:
            for name in assignment.roles:
                detail = f"assignment of {assignment.principal_id} in tenant {tenant}"
                sources.append(RoleSource(role=name, via="assignment", detail=detail))
    if principal.auth_method == "jwt":
        for mapping in snapshot.claim_mappings:
            if mapping.issuer not in (None, principal.issuer):
                continue
            if mapping.value in principal.attributes.get(mapping.claim, ()):
                issuer = f" (issuer {mapping.issuer})" if mapping.issuer else " (any issuer)"
                for name in mapping.roles:
                    detail = f"claim mapping {mapping.claim}={mapping.value}{issuer}"
                    sources.append(RoleSource(role=name, via="claim_mapping", detail=detail))
    ignored = tuple(dict.fromkeys(s.role for s in sources if s.role not in snapshot.roles))
    sources = [s for s in sources if s.role in snapshot.roles]
    seen = {s.role for s in sources}
    queue = [s.role for s in sources]
    while queue:
        name = queue.pop(0)
        for parent in snapshot.roles[name].inherits:
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
                sources.append(
                    RoleSource(role=parent, via="inherited", detail=f"inherited from {name}")
                )
    return tuple(sources), ignored


def concrete_path(route_path: str, tenant: str | None) -> str:
    """A request path for a catalogued route: ``{tenantId}``-like parameters take the caller's
    tenant, others ``<name>-1``; ``{proxy+}`` one segment."""
    parts = []
    for segment in split_path(route_path):
        m = _PARAM.match(segment)
        if m is None:
            parts.append(segment)
        elif "tenant" in m.group(1).lower() and tenant:
            parts.append(tenant)
        else:
            parts.append(f"{m.group(1).lower()}-1")
    return "/" + "/".join(parts)


def route_requests(routes: Sequence[str], tenant: str | None) -> list[tuple[str, str, str]]:
    """(route, verb, concrete path) for every route of a catalog (``ANY``: every verb)."""
    out: list[tuple[str, str, str]] = []
    for route in routes:
        verb, path = parse_route(route)
        concrete = "/x-1" if route.strip() == DEFAULT_ROUTE else concrete_path(path, tenant)
        for each in HTTP_METHODS if verb == "ANY" else (verb,):
            out.append((route, each, concrete))
    return out


def explain(
    snapshot: ConfigSnapshot,
    assignments: Iterable[RoleAssignment],
    principal: Principal,
    request: RequestSpec,
    *,
    verified: bool = True,
    policy_max_bytes: int = 6144,
) -> Explanation:
    """The whole decision for ``principal`` asking for ``request`` (see the module doc)."""
    assignments = tuple(assignments)
    arn = request.arn()
    method, path = arn.method or request.method, arn.path or request.path
    roles = resolve_roles(snapshot, principal, assignments)
    sources, ignored = role_sources(snapshot, principal, assignments)
    # as the authorizer: a permission requiring scopes applies only to a caller with them all
    scopes = snapshot.relevant_scopes(principal.scopes)
    grants = grants_for(snapshot, roles, arn.api_id, arn.stage, scopes)
    tenant = principal.tenant
    segments = split_path(path)
    unscoped = tuple(
        MatchedRule(
            rule=f"{name}#{index}",
            effect=permission.effect,
            methods=tuple(permission.methods),
            path=permission.path,
            missing_scopes=tuple(s for s in permission.requires_scopes if s not in scopes),
        )
        for name in roles
        for index, permission in enumerate(snapshot.roles[name].permissions)
        if permission.applies_to(arn.api_id, arn.stage)
        and not permission.scoped_for(scopes)
        and permission.matches(method, segments, tenant)
    )
    matched = tuple(
        MatchedRule(
            rule=g.rule_id,
            effect=g.permission.effect,
            methods=tuple(g.permission.methods),
            path=g.permission.path,
        )
        for g in grants
        if g.permission.matches(method, segments, tenant)
    )
    decision = evaluate(grants, method, path, tenant)
    mismatch = request.tenant_header is not None and request.tenant_header != tenant
    catalog = snapshot.routes_for(arn.api_id, arn.stage)
    policy = None
    routes: list[RouteAnswer] = []
    if not mismatch:
        result = build_policy(
            arn=arn, grants=grants, tenant=tenant, routes=catalog, max_bytes=policy_max_bytes
        )
        document = result.document
        policy = PolicyInfo(
            scope=result.scope, allows_request=result.allows_request, document=document
        )
        for route, verb, concrete in route_requests(catalog or (), tenant):
            target = arn.resource(verb, concrete)
            cached = iam_evaluate(document, target) == "allow"
            rbac = evaluate(grants, verb, concrete, tenant).allowed
            routes.append(
                RouteAnswer(
                    route=route,
                    method=verb,
                    path=concrete,
                    cached="allow" if cached else "deny",
                    rbac="allow" if rbac else "deny",
                )
            )
    if mismatch:
        outcome, reason = "deny", "tenant_mismatch"
    elif decision.allowed and policy is not None and not policy.allows_request:
        outcome, reason = "deny", "policy_mismatch"
    else:
        outcome, reason = ("allow" if decision.allowed else "deny"), decision.reason
    limits = tuple(
        LimitInfo(
            rule_id=a.rule.rule_id,
            scope=a.rule.scope + (f" ({a.rule.role})" if a.rule.role else ""),
            scope_key=a.scope_key,
            limit=a.rule.limit,
            window=a.rule.window,
            algorithm=a.rule.algorithm,
            mode=a.rule.mode,
            shadow=a.rule.shadow,
            counted=outcome == "allow",
        )
        for a in applicable(
            snapshot.limits,
            api_id=arn.api_id,
            stage=arn.stage,
            method=method,
            path=path,
            tenant=tenant,
            principal_id=principal.principal_id,
            key_id=principal.key_id,
            source_ip=request.source_ip,
            roles=roles,
        )
    )
    return Explanation(
        request={
            "method": method,
            "path": path,
            "api_id": arn.api_id,
            "stage": arn.stage,
            "arn": arn.arn,
            "tenant_header": request.tenant_header,
            "source_ip": request.source_ip,
        },
        identity=identity_of(principal, verified=verified),
        roles=sources,
        ignored_roles=ignored,
        matched=matched,
        not_applied=unscoped,
        decision=decision,
        outcome=outcome,
        reason=reason,
        limits=limits,
        policy=policy,
        routes=tuple(routes),
        catalogued=catalog is not None,
    )


def render(answer: Explanation) -> str:
    """The explanation for a terminal."""
    req, who = answer.request, answer.identity
    lines = [
        f"{req['method']} {req['path']}  on {req['api_id']}/{req['stage']}",
        f"=> {answer.outcome.upper()} ({answer.reason})",
        "",
        "identity",
        f"  principal   {who.principal_id} ({who.auth_method}"
        + ("" if who.verified else ", NOT verified: decoded only")
        + ")",
        f"  tenant      {who.tenant or '-'}",
    ]
    if who.issuer:
        lines.append(f"  issuer      {who.issuer}")
    if who.key_id:
        lines.append(f"  key id      {who.key_id}")
    if who.scopes:
        lines.append(f"  scopes      {' '.join(who.scopes)}")
    lines += ["", "roles"]
    for source in answer.roles:
        lines.append(f"  {source.role:<16} {source.via:<13} {source.detail}")
    if not answer.roles:
        lines.append("  (none)")
    for name in answer.ignored_roles:
        lines.append(f"  {name:<16} ignored       not defined in the RBAC data")
    lines += ["", "rules matching the request (deny wins, else the first allow)"]
    for rule in answer.matched:
        mark = "->" if rule.rule == answer.decision.matched_rule else "  "
        methods = ",".join(rule.methods)
        lines.append(f"{mark} {rule.rule:<20} {rule.effect:<5} {methods} {rule.path}")
    if not answer.matched:
        lines.append("   (none: default deny)")
    for rule in answer.not_applied:
        methods = ",".join(rule.methods)
        lines.append(
            f"   {rule.rule:<20} {rule.effect:<5} {methods} {rule.path}  not applied: "
            f"the credential lacks scope {', '.join(rule.missing_scopes)}"
        )
    if answer.reason == "tenant_mismatch":
        lines.append(
            f"   the tenant header says {req['tenant_header']}, the caller is {who.tenant}"
        )
    lines += ["", "rate limits that apply"]
    for limit in answer.limits:
        usage = f", used {limit.current}" if limit.current is not None else ""
        flags = " shadow" * limit.shadow + " (not counted: denied)" * (not limit.counted)
        lines.append(
            f"  {limit.rule_id:<22} {limit.limit}/{limit.window} per {limit.scope} "
            f"{limit.scope_key} ({limit.algorithm}, {limit.mode}{usage}){flags}"
        )
    if not answer.limits:
        lines.append("  (none)")
    lines += _policy_lines(answer)
    return "\n".join(lines)


def _policy_lines(answer: Explanation) -> list[str]:
    """The policy, its guards folded, and what a cached answer does on each route."""
    lines: list[str] = []
    if answer.policy is not None:
        policy = answer.policy
        lines += ["", f"policy (scope {policy.scope})"]
        for statement in policy.document.get("Statement", []):
            resources = statement["Resource"]
            guards: list[str] = []
            for resource in [resources] if isinstance(resources, str) else resources:
                short = resource.split(":", 5)[-1]
                rest = short.split("/", 2)[-1]
                if statement["Effect"] == "Deny" and rest.startswith("*") and _GUARD.search(rest):
                    guards.append(rest)
                    continue
                lines.append(f"  {statement['Effect']:<5} {short}")
            if guards:
                lines.append(
                    f"  Deny  {len(guards)} guards against non-canonical paths "
                    f"({', '.join(guards[:3])}, ...; --json shows all)"
                )
        if answer.routes:
            inexact = [r for r in answer.routes if not r.exact]
            lines += ["", "a cached answer (REST API, IAM policy) on the other catalogued routes"]
            for route in answer.routes:
                note = "" if route.exact else f"  (RBAC: {route.rbac}; until the TTL ends)"
                lines.append(f"  {route.cached:<5} {route.method} {route.path}{note}")
            if not inexact:
                lines.append("  every route answered exactly as the authorizer would")
        elif not answer.catalogued:
            lines += ["", "no route catalog for this API stage: the policy covers every path"]
    return lines
