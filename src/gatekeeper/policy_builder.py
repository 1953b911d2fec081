"""Decision → the answer a Lambda authorizer returns: an IAM policy or an HTTP API simple response.

Why a policy is more than "Allow this request": API Gateway caches the answer per identity source
(up to an hour) and applies the cached policy to *every* route of the API for that token. So the
policy must allow what the principal may call and nothing more, using only what IAM resource
globs can say: ``*`` matches any characters including ``/`` (``GET/orders/*`` also matches
``GET/orders/1/invoice``), ``?`` one character. There is no "exactly one segment".

How :func:`build_policy` stays exact (or safe):

1. Translate each RBAC permission into globs (verbs enumerated, ``{id}``/``*`` → ``*``,
   ``{tenant}`` → the caller's tenant, trailing ``**`` → the bare prefix and ``prefix/*``).
2. Compare the policy with RBAC on every route path of the API under every verb, *exactly*:
   paths are words over segments and both RBAC patterns and globs are simple regular expressions
   over them, so a breadth-first walk over the product automaton finds any disagreement, even at
   depths a sampled check would miss (``{proxy+}``), and on paths with a trailing ``/`` (which
   RBAC normalises away but a glob's ``*`` matches). The walk runs twice: with ``*`` crossing
   ``/`` (IAM's documented rule) and with a mid-path ``*`` held to one segment (a reading some
   AWS answers suggest), so the policy is right whichever API Gateway implements.
3. Where the policy allows a route RBAC denies, add a Deny for that route's template; re-check.
4. If it still disagrees, or there is no route catalog, fall back to a *safe* policy (never
   allows what RBAC denies; right for the request, if need be by allowing the request's exact
   ARN) with scope ``"request"``; last resort, a policy for the request resource alone.
   Whatever is returned answers the request exactly as RBAC does, or denies it (fail closed).
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from gatekeeper.arn import ExecuteApiArn
from gatekeeper.canonical_path import NON_CANONICAL_GLOBS
from gatekeeper.rbac.evaluator import Grant, evaluate
from gatekeeper.rbac.model import DEFAULT_ROUTE, HTTP_METHODS, Effect, parse_route, split_path

Verdict = Literal["allow", "deny", "implicit_deny"]
PolicyScope = Literal["api", "request"]
ContextValue = str | int | bool

INVOKE = "execute-api:Invoke"
POLICY_VERSION = "2012-10-17"
_ALL_VERBS = frozenset(HTTP_METHODS)
# What may go into a glob literally: the characters RBAC allows in literal segments.
_SAFE_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=:@%-]+$")
_MAX_STATES = 5_000  # per route and verb; far above real rule sets, a guard against pathologies


# --- IAM evaluation ----------------------------------------------------------------------------
def iam_evaluate(
    policy_document: Mapping[str, Any], arn: str, *, star_crosses_slash: bool = True
) -> Verdict:
    """How API Gateway judges ``execute-api:Invoke`` on ``arn``: explicit Deny, Allow, or neither.

    ``Resource``/``Action`` (and their ``Not`` forms) may be a string or a list; ``*`` and ``?``
    glob within each colon-separated ARN field, a trailing ``*`` also across colons. In the
    resource part ``*`` crosses ``/``; ``star_crosses_slash=False`` models the narrower reading
    (a ``*`` that does not end the pattern stays within one ``/`` segment). Elements this model
    cannot evaluate (``Condition``, ``Principal``) raise ``ValueError`` rather than being guessed.

    >>> glob = "arn:aws:execute-api:*:*:api/prod/GET/orders/*"
    >>> doc = {"Statement": [{"Effect": "Allow", "Action": "execute-api:*", "Resource": glob}]}
    >>> iam_evaluate(doc, "arn:aws:execute-api:us-east-1:1:api/prod/GET/orders/1/invoice")
    'allow'
    """
    allowed = False
    for statement in _statements(policy_document):
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise ValueError(f"statement Effect must be 'Allow' or 'Deny', not {effect!r}")
        unsupported = {"Condition", "Principal", "NotPrincipal"} & statement.keys()
        if unsupported:
            raise ValueError(f"cannot evaluate statement elements {sorted(unsupported)}")
        if not _element_matches(statement, "Action", INVOKE, _action_regex):
            continue
        if not _element_matches(
            statement, "Resource", arn, lambda p: _resource_regex(p, star_crosses_slash)
        ):
            continue
        if effect == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else "implicit_deny"


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = document.get("Statement")
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not all(isinstance(s, Mapping) for s in items):
        raise ValueError("policy document needs a Statement object or list of objects")
    return items


def _element_matches(
    statement: Mapping[str, Any],
    name: str,
    value: str,
    compile_: Callable[[str], re.Pattern[str]],
) -> bool:
    """``name`` (any pattern matches) or ``Not<name>`` (no pattern matches); exactly one of them."""
    negated = f"Not{name}"
    if (name in statement) == (negated in statement):
        raise ValueError(f"statement needs exactly one of {name} and {negated}")
    raw = statement[name] if name in statement else statement[negated]
    patterns = [raw] if isinstance(raw, str) else raw
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ValueError(f"{name} must be a string or a list of strings")
    hit = any(compile_(p).fullmatch(value) for p in patterns)
    return hit if name in statement else not hit


@lru_cache(maxsize=256)
def _action_regex(pattern: str) -> re.Pattern[str]:
    """Action names compare case-insensitively; ``*``/``?`` glob."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE)


@lru_cache(maxsize=4096)
def _resource_regex(pattern: str, star_crosses_slash: bool) -> re.Pattern[str]:
    """Glob → regex per ARN field: ``arn:partition:service:region:account:resource``."""
    fields = pattern.split(":", 5)
    out: list[str] = []
    for index, field in enumerate(fields):
        chars: list[str] = []
        for pos, c in enumerate(field):
            last = pos == len(field) - 1
            if index < 5:
                star, one = (".*" if last else "[^:]*"), "[^:]"
            elif star_crosses_slash:
                star, one = ".*", "."
            else:
                star, one = (".*" if last else "[^/]*"), "[^/]"
            chars.append(star if c == "*" else one if c == "?" else re.escape(c))
        out.append("".join(chars))
    return re.compile(":".join(out))


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


# --- segment patterns: what RBAC rules, globs and routes have in common ------------------------
# A resource path is a word over segments. A request may end in ``/`` (``GET/orders/``): that is
# the segment ``""`` at the end, which RBAC ignores (it normalises ``/orders/`` to ``/orders``)
# but a glob's ``*`` happily matches (``GET/orders/*`` matches ``GET/orders/``).
_TokenKind = Literal["lit", "one", "any", "star1", "star", "end"]
_Token = tuple[_TokenKind, str]
_ONE: _Token = ("one", "")  # exactly one non-empty segment (RBAC ``*``/``{id}``, route ``{id}``)
_ANY: _Token = ("any", "")  # zero or more non-empty segments (RBAC ``**``)
_STAR1: _Token = ("star1", "")  # one segment, possibly the trailing ``""`` (part of a glob ``*``)
_STAR: _Token = ("star", "")  # zero or more segments, possibly ending in ``""``
_END: _Token = ("end", "")  # an optional trailing ``/``
_SKIPPABLE = frozenset({"any", "star", "end"})


def _lit(value: str) -> _Token:
    return ("lit", value)


@dataclass(frozen=True, slots=True)
class _Rule:
    """An applicable RBAC permission compiled for one caller (``{tenant}`` resolved)."""

    effect: Effect
    verbs: frozenset[str]
    tokens: tuple[_Token, ...]


@dataclass(frozen=True, slots=True)
class _Glob:
    """``{base}/{verb}/{parts joined by /}``; ``verb=None`` is ``{base}/*`` (everything)."""

    verb: str | None
    parts: tuple[str, ...] = ()

    def render(self, base: str) -> str:
        if self.verb is None:
            return f"{base}/*"
        return f"{base}/{self.verb}/{'/'.join(self.parts)}"

    def applies_to(self, verb: str) -> bool:
        return self.verb is None or self.verb == verb

    def tokens(self, star_crosses_slash: bool) -> tuple[_Token, ...]:
        """The paths this glob matches (paths have no empty segments except a trailing one)."""
        if self.verb is None or self.parts == ("*",):  # ``GET/*`` also matches the root ``GET/``
            return (_STAR,)
        out: list[_Token] = []
        for i, part in enumerate(self.parts):
            if part != "*":
                out.append(_lit(part))
            elif star_crosses_slash or i == len(self.parts) - 1:
                out += (_STAR1, _STAR)
            else:
                out.append(_STAR1)
        return tuple(out)

    def covers(self, other: _Glob) -> bool:
        """A cheap sufficient test that ``self`` matches everything ``other`` does."""
        if self.verb is None or self == other:
            return True
        if other.verb != self.verb or not self.parts or self.parts[-1] != "*":
            return False
        prefix = self.parts[:-1]
        if not prefix and not other.parts:
            return True
        if len(other.parts) <= len(prefix):
            return False
        return all(p in ("*", o) for p, o in zip(prefix, other.parts, strict=False))


@dataclass(frozen=True, slots=True)
class _Route:
    """A catalog route's paths (with or without a trailing ``/``) under its verbs: API Gateway
    invokes the authorizer, and applies a cached policy, only for (verb, route) pairs that exist
    (any other request is refused before: 403/404), so those are all a policy must get right."""

    tokens: tuple[_Token, ...]
    template: tuple[str, ...]  # the route path with every parameter as ``*``
    verbs: frozenset[str] = _ALL_VERBS


_EVERY_PATH = (_Route((), ()), _Route((_ONE, _ANY, _END), ("*",)))
"""Without a catalog (or for an HTTP API's ``$default`` route) the check runs over every path
(the root, then all others) under every verb."""


def _catalog(routes: Sequence[str]) -> tuple[_Route, ...]:
    return tuple(r for route in routes for r in _route(route))


def _route(route: str) -> tuple[_Route, ...]:
    if route.strip() == DEFAULT_ROUTE:
        return _EVERY_PATH
    verb, path = parse_route(route)
    verbs = _ALL_VERBS if verb == "ANY" else frozenset({verb})
    tokens: list[_Token] = []
    template: list[str] = []
    for part in split_path(path):
        if part.startswith("{"):
            tokens += (_ONE, _ANY) if part.endswith("+}") else (_ONE,)
            template.append("*")
        else:
            tokens.append(_lit(part))
            template.append(part)
    return (_Route((*tokens, _END) if tokens else (), tuple(template), verbs),)


def _compile(grants: Iterable[Grant], tenant: str | None) -> tuple[_Rule, ...]:
    """RBAC permissions as segment patterns; ``{tenant}`` rules vanish without a tenant."""
    rules: list[_Rule] = []
    for grant in grants:
        perm = grant.permission
        tokens: list[_Token] = []
        for seg in perm.segments:
            if seg.kind == "tenant" and (not tenant or "/" in tenant):
                break  # RBAC matches such a tenant against no path segment
            if seg.kind == "literal":
                tokens.append(_lit(seg.value))
            elif seg.kind == "tenant":
                tokens.append(_lit(tenant or ""))
            else:
                tokens.append(_ONE if seg.kind == "one" else _ANY)
        else:
            verbs = _ALL_VERBS if "*" in perm.methods else frozenset(perm.methods)
            rules.append(_Rule(perm.effect, verbs, tuple(tokens)))
    return tuple(rules)


def _translate(rule: _Rule) -> tuple[list[_Glob], bool]:
    """Globs covering the rule (a superset, except for dropped allows) and whether they are exact.

    Exact means the globs match the rule's paths and nothing else under either ``*`` reading:
    no single-segment wildcards, and a tenant that is a plain literal. An allow whose tenant is
    not (it could smuggle ``*`` or ``/`` into the policy) yields nothing; a deny gets ``*``.
    """
    if rule.tokens == (_ANY,) and rule.verbs == _ALL_VERBS:
        return [_Glob(None)], True
    parts: list[str] = []
    exact = True
    rest = bool(rule.tokens) and rule.tokens[-1] == _ANY
    for kind, value in rule.tokens[:-1] if rest else rule.tokens:
        if kind == "lit" and _SAFE_LITERAL.match(value):
            parts.append(value)
        elif kind == "lit" and rule.effect == "allow":
            return [], False
        else:
            parts.append("*")
            exact = False
    variants = [tuple(parts)]
    if rest:
        variants.append((*parts, "*"))
    elif rule.effect == "deny" and parts and parts[-1] != "*":
        variants.append((*parts, ""))  # RBAC denies ``/x/`` as ``/x``: so must the policy
    verbs = [v for v in HTTP_METHODS if v in rule.verbs]
    return [_Glob(v, p) for v in verbs for p in variants], exact


def _prune(globs: Iterable[_Glob]) -> tuple[_Glob, ...]:
    """Drop duplicates and globs another one already covers (keeps the policy small)."""
    unique = set(globs)
    if _Glob(None) in unique:
        return (_Glob(None),)
    # Only a glob ending in ``*`` covers another (two distinct ones never cover each other), and
    # only one whose first part is ``*`` or the other's first part: index them by that.
    wide: dict[tuple[str | None, str | None], list[_Glob]] = {}
    for g in unique:
        if g.parts[-1:] == ("*",):
            wide.setdefault((g.verb, g.parts[0] if len(g.parts) > 1 else None), []).append(g)

    def covered(g: _Glob) -> bool:
        heads = (None, "*", g.parts[0]) if g.parts else (None,)
        return any(w != g and w.covers(g) for h in heads for w in wide.get((g.verb, h), ()))

    return tuple(
        sorted((g for g in unique if not covered(g)), key=lambda g: (g.verb or "", g.parts))
    )


# --- exact comparison over routes --------------------------------------------------------------
class _TooComplex(Exception):
    """The comparison would explore too many states; treated as "cannot verify"."""


_ROUTE, _RBAC_ALLOW, _RBAC_DENY, _POLICY_ALLOW, _POLICY_DENY = range(5)
_Pattern = tuple[int, tuple[_Token, ...]]  # (role in the comparison, tokens)
_State = frozenset[tuple[int, int]]  # (pattern index, position)


@dataclass(frozen=True, slots=True)
class _Mismatch:
    route: _Route
    verb: str
    over_allow: bool  # the policy allows a path RBAC denies (else: denies one RBAC allows)
    witness: tuple[str | None, ...]  # the path's segments; None is "any other value"


@dataclass(frozen=True, slots=True)
class _Candidate:
    allow: tuple[_Glob, ...]
    deny: tuple[_Glob, ...]


def _mismatches(
    candidate: _Candidate, rules: Sequence[_Rule], routes: Sequence[_Route], *, every_over: bool
) -> list[_Mismatch]:
    """Where the candidate and RBAC disagree on some path of a route, under either reading.

    ``every_over``: every over-allowing (route, verb), and no under-allows (to place Denies).
    Otherwise just enough to judge the candidate: the first over-allow, or the first under-allow
    and proof that nothing over-allows.
    """
    found: dict[tuple[_Route, str, bool], _Mismatch] = {}
    memo: dict[tuple[object, ...], tuple[tuple[str | None, ...] | None, ...]] = {}
    want_under = not every_over
    by_verb = [(v, _patterns(candidate, rules, v, c)) for c in (True, False) for v in HTTP_METHODS]
    for route in routes:
        for verb, patterns in by_verb:
            if verb not in route.verbs:
                continue
            key = (route.tokens, *patterns)
            if key not in memo:  # ``want_under`` only turns off, so earlier answers hold
                memo[key] = _compare(route.tokens, patterns, want_under=want_under)
            for over, witness in zip((True, False), memo[key], strict=True):
                if witness is None or (not over and not want_under):
                    continue
                found.setdefault((route, verb, over), _Mismatch(route, verb, over, witness))
                if over and not every_over:
                    return list(found.values())
                if not over:
                    want_under = False  # one is enough to know the candidate is not exact
    return list(found.values())


def _patterns(
    candidate: _Candidate, rules: Sequence[_Rule], verb: str, crosses: bool
) -> tuple[_Pattern, ...]:
    rbac = [
        (_RBAC_ALLOW if r.effect == "allow" else _RBAC_DENY, (*r.tokens, _END))
        for r in rules
        if verb in r.verbs
    ]
    policy = [
        (role, g.tokens(crosses))
        for role, globs in ((_POLICY_ALLOW, candidate.allow), (_POLICY_DENY, candidate.deny))
        for g in globs
        if g.applies_to(verb)
    ]
    return tuple(dict.fromkeys([*rbac, *policy]))


def _compare(
    route: tuple[_Token, ...], patterns: Sequence[_Pattern], *, want_under: bool
) -> tuple[tuple[str | None, ...] | None, tuple[str | None, ...] | None]:
    """Shortest paths of the route where the policy over-allows / under-allows, if any.

    Breadth-first over sets of automaton positions. Only the literals the live patterns expect
    next can behave differently from "any other value" (``None``), so they are the whole alphabet
    of each step: the walk is exact, not sampled. Denying ``/x/`` where RBAC allows ``/x`` is not
    counted: such paths are odd, and refusing them is safe.
    """
    over_possible = any(role == _POLICY_ALLOW for role, _ in patterns)
    under_possible = want_under and any(role == _RBAC_ALLOW for role, _ in patterns)
    if not (over_possible or under_possible):
        return None, None
    pats: list[_Pattern] = [(_ROUTE, route), *patterns]
    start = _closure(pats, {(i, 0) for i in range(len(pats))})
    seen = {start}
    queue: deque[tuple[_State, tuple[str | None, ...]]] = deque([(start, ())])
    over: tuple[str | None, ...] | None = None
    under: tuple[str | None, ...] | None = None
    while queue and ((over_possible and over is None) or (under_possible and under is None)):
        state, path = queue.popleft()
        done = {pats[i][0] for i, p in state if p == len(pats[i][1])}
        if _ROUTE in done:
            rbac = _RBAC_ALLOW in done and _RBAC_DENY not in done
            policy = _POLICY_ALLOW in done and _POLICY_DENY not in done
            if policy and not rbac and over is None:
                over = path
            if rbac and not policy and under is None and path[-1:] != ("",):
                under = path
        literals = {
            tok[1]
            for i, p in state
            if p < len(pats[i][1]) and (tok := pats[i][1][p])[0] in ("lit", "end")
        }
        for symbol in (*sorted(literals), None):
            nxt = _step(pats, state, symbol)
            if nxt in seen or not any(i == 0 for i, _ in nxt):
                continue
            if len(seen) >= _MAX_STATES:
                raise _TooComplex
            seen.add(nxt)
            queue.append((nxt, (*path, symbol)))
    return over, under


def _closure(pats: Sequence[_Pattern], positions: Iterable[tuple[int, int]]) -> _State:
    """Add the positions reachable by letting a token that may match nothing do so."""
    out: set[tuple[int, int]] = set()
    stack = list(positions)
    while stack:
        i, p = stack.pop()
        if (i, p) in out:
            continue
        out.add((i, p))
        tokens = pats[i][1]
        if p < len(tokens) and tokens[p][0] in _SKIPPABLE:
            stack.append((i, p + 1))
    return frozenset(out)


def _step(pats: Sequence[_Pattern], state: _State, symbol: str | None) -> _State:
    moved: set[tuple[int, int]] = set()
    for i, p in state:
        tokens = pats[i][1]
        if p == len(tokens):
            continue
        kind, value = tokens[p]
        if kind in ("lit", "end"):  # the value of "end" is ""
            matched = value == symbol
        else:  # "one" and "any" never match the trailing "", glob stars do
            matched = kind in ("star1", "star") or symbol != ""
        if matched:
            moved.add((i, p) if kind in ("any", "star") else (i, p + 1))
    return _closure(pats, moved)


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
    rules = _compile(grants, tenant)
    catalog = _EVERY_PATH if routes is None else _catalog(routes)

    def fits(candidate: _Candidate) -> bool:  # checked first: verifying a big policy is costly
        return policy_size(_document(*_resources(candidate, base))) <= max_bytes

    try:
        for candidate, scope in _candidates(rules, catalog, fits):
            allow, deny = _resources(candidate, base)
            return BasePolicy(allow, deny, scope)
    except _TooComplex:
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
    rules: Sequence[_Rule],
    catalog: Sequence[_Route],
    fits: Callable[[_Candidate], bool],
) -> Iterator[tuple[_Candidate, PolicyScope]]:
    """Policies that never allow what RBAC denies, each with the scope it was verified for:
    every exact one first, then the narrower ones.

    Candidates too big to send are skipped before the (costlier) comparison; adding Denies only
    makes a policy bigger, so an oversized candidate ends that line.
    """
    allow: list[_Glob] = []
    exact_allow: list[_Glob] = []
    deny: list[_Glob] = []
    for rule in rules:
        globs, exact = _translate(rule)
        if rule.effect == "deny":
            deny += globs
            continue
        allow += globs
        if exact:
            exact_allow += globs
    narrower: list[_Candidate] = []
    first = _Candidate(_prune(allow), _prune(deny))
    # Every allow, plus Denies where it over-allows: per route, else per witness path (without
    # a catalog, "every route" is every path: the same walk as for a ``$default`` route).
    for deny_for in (_route_denies, _witness_denies):
        refined = _refine(first, rules, catalog, fits, deny_for)
        if refined is None:
            continue
        left = _mismatches(refined, rules, catalog, every_over=False)
        if any(m.over_allow for m in left):
            continue
        if not left:
            yield refined, "api"
            return
        narrower.append(refined)
    # Exact allows minus every deny can only be narrower than RBAC; still checked.
    safe = _Candidate(_prune(exact_allow), _prune(deny))
    if fits(safe):
        left = _mismatches(safe, rules, catalog, every_over=False)
        if not any(m.over_allow for m in left):
            if not left:
                yield safe, "api"
                return
            narrower.append(safe)
    for candidate in narrower:
        yield candidate, "request"


def _refine(
    candidate: _Candidate,
    rules: Sequence[_Rule],
    catalog: Sequence[_Route],
    fits: Callable[[_Candidate], bool],
    deny_for: Callable[[_Mismatch], tuple[_Glob, ...]],
) -> _Candidate | None:
    """Add Denies until nothing over-allows (or the policy stops fitting, or stops changing)."""
    for _ in range(_MAX_ROUNDS):
        if not fits(candidate):
            return None
        over = _mismatches(candidate, rules, catalog, every_over=True)
        if not over:
            return candidate
        extra = [g for m in over for g in deny_for(m)]
        refined = _Candidate(candidate.allow, _prune([*candidate.deny, *extra]))
        if refined == candidate:
            return None
        candidate = refined
    return None


def _witness_denies(over: _Mismatch) -> tuple[_Glob, ...]:
    """A Deny shaped like the shortest over-allowed path, ``*`` for "any other value".

    Where a route's template is a wildcard (``ANY /{proxy+}``, ``$default``) a Deny of the whole
    route would take everything; ``GET/orders/*/*`` takes only the deeper paths that a one-segment
    rule (``/orders/{id}``) does not allow but its glob ``GET/orders/*`` does.
    """
    return (_Glob(over.verb, tuple("*" if part is None else part for part in over.witness)),)


def _route_denies(over: _Mismatch) -> tuple[_Glob, ...]:
    """Globs denying the route's paths: with a trailing ``/`` if that is where it over-allows
    (the witness is the shortest, so a plain path would have been found first), else both."""
    verb, template = over.verb, over.route.template
    slashed = _Glob(verb, (*template, ""))
    if over.witness[-1:] == ("",):
        return (slashed,)
    if template and template[-1] != "*":  # ``x/*`` already matches ``x/1/``; ``x`` not ``x/``
        return _Glob(verb, template), slashed
    return (_Glob(verb, template),)


def _resources(candidate: _Candidate, base: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
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


# --- responses ---------------------------------------------------------------------------------
def rest_response(
    principal_id: str,
    policy: PolicyResult,
    context: Mapping[str, ContextValue],
    usage_identifier_key: str | None = None,
) -> dict[str, Any]:
    """The IAM-policy answer (REST APIs, and HTTP APIs without simple responses)."""
    if not principal_id:
        raise ValueError("principalId must not be empty")
    response: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": policy.document,
        "context": _check_context(context),
    }
    if usage_identifier_key is not None:
        response["usageIdentifierKey"] = usage_identifier_key
    return response


def http_simple_response(
    is_authorized: bool, context: Mapping[str, ContextValue]
) -> dict[str, Any]:
    """The HTTP API simple answer (``enableSimpleResponses``)."""
    return {"isAuthorized": bool(is_authorized), "context": _check_context(context)}


def deny_response(
    principal_id: str, arn: ExecuteApiArn, context: Mapping[str, ContextValue] | None = None
) -> dict[str, Any]:
    """A Deny of the request resource, for failures before any policy could be built."""
    policy = PolicyResult((), (arn.arn,), "request", False)
    return rest_response(principal_id or "anonymous", policy, context or {})


def _check_context(context: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
    """API Gateway accepts only string, number and boolean context values: fail here, not there."""
    checked: dict[str, ContextValue] = {}
    for key, value in context.items():
        if not isinstance(key, str):
            raise TypeError(f"context keys must be strings, not {type(key).__name__}")
        if not isinstance(value, str | int | bool):
            raise TypeError(
                f"context value {key!r} must be a string, integer or boolean, "
                f"not {type(value).__name__}"
            )
        checked[key] = value
    return checked
