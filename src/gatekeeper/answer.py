"""The answer to one authorization: the response API Gateway gets (with its context) and the
audit event, built from the facts the :class:`~gatekeeper.authorizer.Authorizer` gathered.

Pure functions over plain data, so every answer can be tested without running the pipeline;
the authorizer decides *what* the outcome is, this module only says it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gatekeeper.audit.event import AuditEvent, RateLimitInfo, iso_time
from gatekeeper.config import Settings
from gatekeeper.identity.principal import Principal
from gatekeeper.policy_builder import PolicyResult
from gatekeeper.rate_limit.counters import Block
from gatekeeper.rate_limit.limiter import LimitDecision
from gatekeeper.rbac.evaluator import Decision
from gatekeeper.requests import AccessRequest, EventKind
from gatekeeper.responses import ContextValue, deny_response, http_simple_response, rest_response


@dataclass
class Facts:
    """Facts gathered along the way, for the audit event whatever the ending."""

    request: AccessRequest | None = None
    principal: Principal | None = None
    roles: tuple[str, ...] = ()
    decision: Decision | None = None
    policy: PolicyResult | None = None
    config_version: int | None = None
    presented_key_id: str | None = None
    limit: LimitDecision | None = None
    block: Block | None = None


def response_for(
    settings: Settings, facts: Facts, *, allowed: bool, reason: str, now: float
) -> dict[str, Any]:
    """The IAM policy (or HTTP API simple) answer for the facts gathered."""
    request, principal = facts.request, facts.principal
    assert request is not None
    context = context_for(facts, reason, now)
    if request.kind is EventKind.HTTP_V2 and settings.http_api_response == "simple":
        return http_simple_response(allowed, context)
    principal_id = principal.principal_id if principal else "anonymous"
    limited = not allowed and facts.limit is not None and not facts.limit.allowed
    if facts.policy is None or principal is None or limited:
        # failed before a policy existed, blocked, or rate-limited: deny just this request
        return deny_response(principal_id, request.arn, context)
    usage_key = principal.usage_identifier if settings.usage_identifier_key else None
    return rest_response(principal_id, facts.policy, context, usage_key)


def minimal_deny(settings: Settings, facts: Facts, reason: str) -> dict[str, Any]:
    """A Deny of just this request, with nothing but the reason in its context."""
    request, principal = facts.request, facts.principal
    assert request is not None
    context: dict[str, ContextValue] = {"reason": reason}
    if request.kind is EventKind.HTTP_V2 and settings.http_api_response == "simple":
        return http_simple_response(False, context)
    principal_id = principal.principal_id if principal else "anonymous"
    return deny_response(principal_id, request.arn, context)


def flagged(settings: Settings, facts: Facts) -> bool:
    """Flag mode: a rate-limited request API Gateway lets through to an integration that answers
    429 from the context (only where the policy could express the allow)."""
    return (
        settings.rate_limit_response == "flag"
        and facts.policy is not None
        and facts.policy.allows_request
    )


def context_for(facts: Facts, reason: str, now: float) -> dict[str, ContextValue]:
    """Scalars only (API Gateway rejects objects and arrays in the context).

    Rate-limit values follow the IETF RateLimit fields, so gateway responses can map them
    to ``RateLimit-*`` / ``Retry-After`` headers.
    """
    principal, limit = facts.principal, facts.limit
    values: dict[str, ContextValue | None] = {"reason": reason}
    if facts.request is not None:
        values.update(eventShape=facts.request.shape.value, path=facts.request.path)
    if principal is not None:
        values.update(
            principalId=principal.principal_id,
            tenant=principal.tenant,
            authMethod=principal.auth_method,
            issuer=principal.issuer,
            keyId=principal.key_id,
            roles=",".join(facts.roles),
            scopes=" ".join(sorted(principal.scopes)),
            matchedRule=facts.decision.matched_rule if facts.decision else None,
            policyScope=facts.policy.scope if facts.policy else None,
            configVersion=facts.config_version,
        )
    if limit is not None and limit.binding is not None:
        bound = limit.binding
        values.update(
            rateLimitRule=bound.rule_id,
            rateLimitLimit=bound.limit,
            rateLimitRemaining=bound.remaining,
            rateLimitReset=bound.reset,
            rateLimitPolicy=f'"{bound.rule_id}";q={bound.limit};w={bound.window}',
        )
        if not limit.allowed:
            values["retryAfter"] = max(bound.retry_after, 1)
            values["rateLimited"] = True
    if facts.block is not None and reason == "blocked":
        values["retryAfter"] = max(1, math.ceil(facts.block.until - now))
    return {k: v for k, v in values.items() if v is not None}


def audit_event(
    facts: Facts,
    reason: str,
    *,
    allowed: bool,
    unauthorized: bool,
    now: float,
    latency_ms: float,
) -> AuditEvent:
    """The one audit event of the decision; never a credential (none is in the facts)."""
    request, principal = facts.request, facts.principal
    arn = request.arn if request else None
    return AuditEvent(
        time=iso_time(now),
        request_id=request.request_id if request else None,
        decision="unauthorized" if unauthorized else ("allow" if allowed else "deny"),
        reason=reason,
        principal_id=principal.principal_id if principal else None,
        tenant=principal.tenant if principal else None,
        auth_method=principal.auth_method if principal else None,
        issuer=principal.issuer if principal else None,
        key_id=principal.key_id if principal else None,
        roles=facts.roles,
        event_kind=request.kind.value if request else None,
        event_shape=request.shape.value if request else None,
        api_id=arn.api_id if arn else None,
        stage=arn.stage if arn else None,
        method=request.method if request else None,
        path=request.path if request else None,
        route_key=request.route_key if request else None,
        source_ip=request.source_ip if request else None,
        user_agent=request.user_agent if request else None,
        matched_rule=facts.decision.matched_rule if facts.decision else None,
        policy_scope=facts.policy.scope if facts.policy else None,
        config_version=facts.config_version,
        rate_limit=_rate_limit_info(facts.limit),
        latency_ms=latency_ms,
    )


def _rate_limit_info(limit: LimitDecision | None) -> RateLimitInfo | None:
    if limit is None or limit.binding is None:
        return None
    bound = limit.binding
    return RateLimitInfo(
        rule_id=bound.rule_id,
        limited=not limit.allowed,
        counter=bound.count,
        limit=bound.limit,
        remaining=bound.remaining,
        reset_seconds=bound.reset,
        retry_after_seconds=bound.retry_after or None,
        shadow=bound.shadow,
        shadow_limited=tuple(o.rule_id for o in limit.outcomes if o.shadow and not o.allowed),
        errors=tuple(o.rule_id for o in limit.outcomes if o.error),
    )
