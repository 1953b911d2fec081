"""Exact comparison of a candidate policy with RBAC over every path of an API's routes.

Paths are words over segments and both RBAC patterns and globs are simple regular expressions
over them, so a breadth-first walk over the product automaton finds any disagreement, even at
depths a sampled check would miss (``{proxy+}``), and on paths with a trailing ``/``. The walk
runs twice: with ``*`` crossing ``/`` (IAM's documented rule) and with a mid-path ``*`` held to
one segment (a reading some AWS answers suggest), so a policy found exact is right whichever
API Gateway implements. Only a route's own verbs are walked: API Gateway never invokes the
authorizer, nor applies a cached policy, for a verb/route pair that does not exist.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gatekeeper.policy_globs import (
    ALL_VERBS,
    ANY,
    END,
    ONE,
    SKIPPABLE,
    Glob,
    Rule,
    Token,
    lit,
)
from gatekeeper.rbac.model import DEFAULT_ROUTE, HTTP_METHODS, parse_route, split_path

_MAX_STATES = 5_000  # per route and verb; far above real rule sets, a guard against pathologies


@dataclass(frozen=True, slots=True)
class Route:
    """A catalog route's paths (with or without a trailing ``/``) under its verbs: API Gateway
    invokes the authorizer, and applies a cached policy, only for (verb, route) pairs that exist
    (any other request is refused before: 403/404), so those are all a policy must get right."""

    tokens: tuple[Token, ...]
    template: tuple[str, ...]  # the route path with every parameter as ``*``
    verbs: frozenset[str] = ALL_VERBS


EVERY_PATH = (Route((), ()), Route((ONE, ANY, END), ("*",)))
"""Without a catalog (or for an HTTP API's ``$default`` route) the check runs over every path
(the root, then all others) under every verb."""


def compile_catalog(routes: Sequence[str]) -> tuple[Route, ...]:
    return tuple(r for route in routes for r in _route(route))


def _route(route: str) -> tuple[Route, ...]:
    if route.strip() == DEFAULT_ROUTE:
        return EVERY_PATH
    verb, path = parse_route(route)
    verbs = ALL_VERBS if verb == "ANY" else frozenset({verb})
    tokens: list[Token] = []
    template: list[str] = []
    for part in split_path(path):
        if part.startswith("{"):
            tokens += (ONE, ANY) if part.endswith("+}") else (ONE,)
            template.append("*")
        else:
            tokens.append(lit(part))
            template.append(part)
    return (Route((*tokens, END) if tokens else (), tuple(template), verbs),)


class TooComplex(Exception):
    """The comparison would explore too many states; treated as "cannot verify"."""


_ROUTE, _RBAC_ALLOW, _RBAC_DENY, _POLICY_ALLOW, _POLICY_DENY = range(5)
_Pattern = tuple[int, tuple[Token, ...]]  # (role in the comparison, tokens)
_State = frozenset[tuple[int, int]]  # (pattern index, position)


@dataclass(frozen=True, slots=True)
class Mismatch:
    route: Route
    verb: str
    over_allow: bool  # the policy allows a path RBAC denies (else: denies one RBAC allows)
    witness: tuple[str | None, ...]  # the path's segments; None is "any other value"


@dataclass(frozen=True, slots=True)
class Candidate:
    allow: tuple[Glob, ...]
    deny: tuple[Glob, ...]


def mismatches(
    candidate: Candidate, rules: Sequence[Rule], routes: Sequence[Route], *, every_over: bool
) -> list[Mismatch]:
    """Where the candidate and RBAC disagree on some path of a route, under either reading.

    ``every_over``: every over-allowing (route, verb), and no under-allows (to place Denies).
    Otherwise just enough to judge the candidate: the first over-allow, or the first under-allow
    and proof that nothing over-allows.
    """
    found: dict[tuple[Route, str, bool], Mismatch] = {}
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
                found.setdefault((route, verb, over), Mismatch(route, verb, over, witness))
                if over and not every_over:
                    return list(found.values())
                if not over:
                    want_under = False  # one is enough to know the candidate is not exact
    return list(found.values())


def _patterns(
    candidate: Candidate, rules: Sequence[Rule], verb: str, crosses: bool
) -> tuple[_Pattern, ...]:
    rbac = [
        (_RBAC_ALLOW if r.effect == "allow" else _RBAC_DENY, (*r.tokens, END))
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
    route: tuple[Token, ...], patterns: Sequence[_Pattern], *, want_under: bool
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
                raise TooComplex
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
        if p < len(tokens) and tokens[p][0] in SKIPPABLE:
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
