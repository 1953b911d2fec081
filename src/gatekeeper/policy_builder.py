"""Decision → the IAM policy a Lambda authorizer returns, safe under API Gateway's cache.

Why a policy is more than "Allow this request": API Gateway caches the answer per identity source
(up to an hour) and applies the cached policy to *every* route of the API for that token. So the
policy must allow what the principal may call and nothing more, using only what IAM resource
globs can say: ``*`` matches any characters including ``/`` (``GET/orders/*`` also matches
``GET/orders/1/invoice``), ``?`` one character. There is no "exactly one segment".

How :func:`build_base` stays exact (or safe):

1. Translate each RBAC permission into globs (:mod:`gatekeeper.policy_globs`).
2. Compare the policy with RBAC on every path of every route of the API, under the route's
   verbs, exactly (:mod:`gatekeeper.route_check`); without a catalog, over every path.
3. Where the policy allows a path RBAC denies, add a Deny for that route's template, or, where
   the route is itself a wildcard (``{proxy+}``), one shaped like the over-allowed path; re-check.
4. If it still disagrees, fall back to a *safe* policy (never allows what RBAC denies) with scope
   ``"request"``. :func:`policy_for_request` then adapts the (memoised) base policy to one
   request: as is, plus the request's exact ARN, or the request alone. Whatever is returned
   answers the request exactly as RBAC does, or denies it (fail closed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gatekeeper.arn import ExecuteApiArn
from gatekeeper.canonical_path import NON_CANONICAL_GLOBS
from gatekeeper.iam_simulator import INVOKE, iam_evaluate
from gatekeeper.policy_globs import Glob, Rule, compile_rules, prune, translate
from gatekeeper.rbac.evaluator import Grant, evaluate
from gatekeeper.route_check import (
    EVERY_PATH,
    Candidate,
    Mismatch,
    Route,
    TooComplex,
    compile_catalog,
    mismatches,
)

PolicyScope = Literal["api", "request"]
POLICY_VERSION = "2012-10-17"


# --- the result --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PolicyResult:
    """The policy for one principal on one API stage.

    ``scope="api"``: verified to answer every route of the API exactly as RBAC does, so it can
    be cached for all of them. ``"request"``: right for the request and never allows what RBAC
    denies, but may deny some routes RBAC allows (until the cache entry expires).
    """

    allow: tuple[str, ...]
    deny: tuple[str, ...]
    scope: PolicyScope
    allows_request: bool

    @property
    def document(self) -> dict[str, Any]:
        """The IAM policy document (a fresh dict each time: the result itself stays immutable)."""
        return _document(self.allow, self.deny)


def _document(allow: Sequence[str], deny: Sequence[str]) -> dict[str, Any]:
    statements = [
        {"Effect": effect, "Action": INVOKE, "Resource": list(resources)}
        for effect, resources in (("Allow", allow), ("Deny", deny))
        if resources
    ]
    return {"Version": POLICY_VERSION, "Statement": statements}


def policy_size(document: Mapping[str, Any]) -> int:
    """Bytes of the compact JSON, which is what counts against API Gateway's limit."""
    return len(json.dumps(document, separators=(",", ":")).encode())


# --- building ----------------------------------------------------------------------------------
_MAX_ROUNDS = 6  # rounds of witness Denies; each adds a Deny per over-allowing (verb, route)


@dataclass(frozen=True, slots=True)
class BasePolicy:
    """The request-independent part: what a caller's roles allow on one API stage.

    Built once per (roles, tenant, API stage, config version) and never allowing what RBAC
    denies on any catalogued route; :func:`policy_for_request` adapts it to one request in
    microseconds. ``scope="api"``: it answers every route exactly as RBAC does.
    """

    allow: tuple[str, ...]
    deny: tuple[str, ...]
    scope: PolicyScope


def build_policy(
    *,
    arn: ExecuteApiArn,
    grants: Sequence[Grant],
    tenant: str | None,
    routes: Sequence[str] | None,
    max_bytes: int = 6144,
) -> PolicyResult:
    """The policy to return for a request on ``arn`` by a caller holding ``grants``.

    ``routes`` is the API stage's route catalog (``"GET /orders/{id}"``, ``"ANY /{proxy+}"``,
    ``"$default"``); without it the policy is checked over every path. Grants for another API
    or stage are ignored. The result's document is at most ``max_bytes`` of compact JSON and
    answers ``arn`` exactly as :func:`~gatekeeper.rbac.evaluator.evaluate` does, or denies it.
    """
    assert arn.method is not None and arn.path is not None, "a request ARN, not a route ARN"
    applicable = [g for g in grants if g.permission.applies_to(arn.api_id, arn.stage)]
    expected = evaluate(applicable, arn.method, arn.path, tenant).allowed
    base = build_base(
        base=arn.base, grants=applicable, tenant=tenant, routes=routes, max_bytes=max_bytes
    )
    return policy_for_request(base, arn, expected, max_bytes)


def build_base(
    *,
    base: str,
    grants: Sequence[Grant],
    tenant: str | None,
    routes: Sequence[str] | None,
    max_bytes: int = 6144,
) -> BasePolicy:
    """The best verified policy for ``grants`` on the API stage ``base`` (the costly part)."""
    rules = compile_rules(grants, tenant)
    catalog = EVERY_PATH if routes is None else compile_catalog(routes)

    def fits(candidate: Candidate) -> bool:  # checked first: verifying a big policy is costly
        return policy_size(_document(*_resources(candidate, base))) <= max_bytes

    try:
        for candidate, scope in _candidates(rules, catalog, fits):
            allow, deny = _resources(candidate, base)
            return BasePolicy(allow, deny, scope)
    except TooComplex:
        pass
    return BasePolicy((), (f"{base}/*",), "request")


def policy_for_request(
    base: BasePolicy, arn: ExecuteApiArn, allowed: bool, max_bytes: int = 6144
) -> PolicyResult:
    """``base`` if it answers ``arn`` as RBAC does (``allowed``); else ``base`` plus the request's
    exact ARN (it under-grants this request: scope ``"request"``); else the request alone."""
    answer = _answers(base.allow, base.deny, arn.arn)
    if answer is allowed:
        return PolicyResult(base.allow, base.deny, base.scope, allowed)
    if allowed and answer is False and base.allow:
        allow = (*base.allow, arn.arn)
        if (
            policy_size(_document(allow, base.deny)) <= max_bytes
            and _answers(allow, base.deny, arn.arn) is True
        ):
            return PolicyResult(allow, base.deny, "request", True)
    return request_only(arn, allowed, max_bytes)


def _candidates(
    rules: Sequence[Rule],
    catalog: Sequence[Route],
    fits: Callable[[Candidate], bool],
) -> Iterator[tuple[Candidate, PolicyScope]]:
    """Policies that never allow what RBAC denies, each with the scope it was verified for:
    every exact one first, then the narrower ones.

    Candidates too big to send are skipped before the (costlier) comparison; adding Denies only
    makes a policy bigger, so an oversized candidate ends that line.
    """
    allow: list[Glob] = []
    exact_allow: list[Glob] = []
    deny: list[Glob] = []
    for rule in rules:
        globs, exact = translate(rule)
        if rule.effect == "deny":
            deny += globs
            continue
        allow += globs
        if exact:
            exact_allow += globs
    narrower: list[Candidate] = []
    first = Candidate(prune(allow), prune(deny))
    # Every allow, plus Denies where it over-allows: per route, else per witness path (without
    # a catalog, "every route" is every path: the same walk as for a ``$default`` route).
    for deny_for in (_route_denies, _witness_denies):
        refined = _refine(first, rules, catalog, fits, deny_for)
        if refined is None:
            continue
        left = mismatches(refined, rules, catalog, every_over=False)
        if any(m.over_allow for m in left):
            continue
        if not left:
            yield refined, "api"
            return
        narrower.append(refined)
    # Exact allows minus every deny can only be narrower than RBAC; still checked.
    safe = Candidate(prune(exact_allow), prune(deny))
    if fits(safe):
        left = mismatches(safe, rules, catalog, every_over=False)
        if not any(m.over_allow for m in left):
            if not left:
                yield safe, "api"
                return
            narrower.append(safe)
    for candidate in narrower:
        yield candidate, "request"


def _refine(
    candidate: Candidate,
    rules: Sequence[Rule],
    catalog: Sequence[Route],
    fits: Callable[[Candidate], bool],
    deny_for: Callable[[Mismatch], tuple[Glob, ...]],
) -> Candidate | None:
    """Add Denies until nothing over-allows (or the policy stops fitting, or stops changing)."""
    for _ in range(_MAX_ROUNDS):
        if not fits(candidate):
            return None
        over = mismatches(candidate, rules, catalog, every_over=True)
        if not over:
            return candidate
        extra = [g for m in over for g in deny_for(m)]
        refined = Candidate(candidate.allow, prune([*candidate.deny, *extra]))
        if refined == candidate:
            return None
        candidate = refined
    return None


def _witness_denies(over: Mismatch) -> tuple[Glob, ...]:
    """A Deny shaped like the shortest over-allowed path, ``*`` for "any other value".

    Where a route's template is a wildcard (``ANY /{proxy+}``, ``$default``) a Deny of the whole
    route would take everything; ``GET/orders/*/*`` takes only the deeper paths that a one-segment
    rule (``/orders/{id}``) does not allow but its glob ``GET/orders/*`` does.
    """
    return (Glob(over.verb, tuple("*" if part is None else part for part in over.witness)),)


def _route_denies(over: Mismatch) -> tuple[Glob, ...]:
    """Globs denying the route's paths: with a trailing ``/`` if that is where it over-allows
    (the witness is the shortest, so a plain path would have been found first), else both."""
    verb, template = over.verb, over.route.template
    slashed = Glob(verb, (*template, ""))
    if over.witness[-1:] == ("",):
        return (slashed,)
    if template and template[-1] != "*":  # ``x/*`` already matches ``x/1/``; ``x`` not ``x/``
        return Glob(verb, template), slashed
    return (Glob(verb, template),)


def _resources(candidate: Candidate, base: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Rendered Allow and Deny resources; with nothing allowed, one Deny of everything.

    Whatever allows a wildcard also denies every non-canonical path (see
    :mod:`gatekeeper.canonical_path`): the authorizer refuses them, and so must a cached policy.
    """
    allow = tuple(g.render(base) for g in candidate.allow)
    if not allow:
        return (), (f"{base}/*",)
    canonical = tuple(f"{base}/{glob}" for glob in NON_CANONICAL_GLOBS)
    return allow, (*(g.render(base) for g in candidate.deny), *canonical)


def _answers(allow: Sequence[str], deny: Sequence[str], arn: str) -> bool | None:
    """Whether the policy allows ``arn`` under both ``*`` readings (None if they differ)."""
    document = _document(allow, deny)
    verdicts = {iam_evaluate(document, arn, star_crosses_slash=c) == "allow" for c in (True, False)}
    return verdicts.pop() if len(verdicts) == 1 else None


def request_only(arn: ExecuteApiArn, allowed: bool, max_bytes: int = 6144) -> PolicyResult:
    """Allow or deny exactly the request (or route) resource; a Deny of everything if even that
    is too big. Also the answer for route ARNs (``$default``, ``$connect``) and console tests,
    whose ARN is all a policy can name."""
    allow, deny = ((arn.arn,), ()) if allowed else ((), (arn.arn,))
    if policy_size(_document(allow, deny)) > max_bytes or _answers(allow, deny, arn.arn) != allowed:
        return PolicyResult((), (f"{arn.base}/*",), "request", False)
    return PolicyResult(allow, deny, "request", allowed)
