"""RBAC permissions and IAM globs as patterns over path segments: the glob compiler.

A resource path is a word over segments. A request may end in ``/`` (``GET/orders/``): that is
the segment ``""`` at the end, which RBAC ignores (it normalises ``/orders/`` to ``/orders``)
but a glob's ``*`` happily matches (``GET/orders/*`` matches ``GET/orders/``). Each RBAC
permission becomes a :class:`Rule` (``{tenant}`` resolved for the caller) and is translated into
:class:`Glob` resources (verbs enumerated, ``{id}``/``*`` → ``*``, trailing ``**`` → the bare
prefix and ``prefix/*``); both read as token sequences that :mod:`gatekeeper.route_check` walks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from gatekeeper.rbac.evaluator import Grant
from gatekeeper.rbac.model import HTTP_METHODS, Effect

ALL_VERBS = frozenset(HTTP_METHODS)
# What may go into a glob literally: the characters RBAC allows in literal segments.
_SAFE_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=:@%-]+$")

TokenKind = Literal["lit", "one", "any", "star1", "star", "end"]
Token = tuple[TokenKind, str]
ONE: Token = ("one", "")  # exactly one non-empty segment (RBAC ``*``/``{id}``, route ``{id}``)
ANY: Token = ("any", "")  # zero or more non-empty segments (RBAC ``**``)
STAR1: Token = ("star1", "")  # one segment, possibly the trailing ``""`` (part of a glob ``*``)
STAR: Token = ("star", "")  # zero or more segments, possibly ending in ``""``
END: Token = ("end", "")  # an optional trailing ``/``
SKIPPABLE = frozenset({"any", "star", "end"})


def lit(value: str) -> Token:
    return ("lit", value)


@dataclass(frozen=True, slots=True)
class Rule:
    """An applicable RBAC permission compiled for one caller (``{tenant}`` resolved)."""

    effect: Effect
    verbs: frozenset[str]
    tokens: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class Glob:
    """``{base}/{verb}/{parts joined by /}``; ``verb=None`` is ``{base}/*`` (everything)."""

    verb: str | None
    parts: tuple[str, ...] = ()

    def render(self, base: str) -> str:
        if self.verb is None:
            return f"{base}/*"
        return f"{base}/{self.verb}/{'/'.join(self.parts)}"

    def applies_to(self, verb: str) -> bool:
        return self.verb is None or self.verb == verb

    def tokens(self, star_crosses_slash: bool) -> tuple[Token, ...]:
        """The paths this glob matches (paths have no empty segments except a trailing one)."""
        if self.verb is None or self.parts == ("*",):  # ``GET/*`` also matches the root ``GET/``
            return (STAR,)
        out: list[Token] = []
        for i, part in enumerate(self.parts):
            if part != "*":
                out.append(lit(part))
            elif star_crosses_slash or i == len(self.parts) - 1:
                out += (STAR1, STAR)
            else:
                out.append(STAR1)
        return tuple(out)

    def covers(self, other: Glob) -> bool:
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


def compile_rules(grants: Iterable[Grant], tenant: str | None) -> tuple[Rule, ...]:
    """RBAC permissions as segment patterns; ``{tenant}`` rules vanish without a tenant."""
    rules: list[Rule] = []
    for grant in grants:
        perm = grant.permission
        tokens: list[Token] = []
        for seg in perm.segments:
            if seg.kind == "tenant" and (not tenant or "/" in tenant):
                break  # RBAC matches such a tenant against no path segment
            if seg.kind == "literal":
                tokens.append(lit(seg.value))
            elif seg.kind == "tenant":
                tokens.append(lit(tenant or ""))
            else:
                tokens.append(ONE if seg.kind == "one" else ANY)
        else:
            verbs = ALL_VERBS if "*" in perm.methods else frozenset(perm.methods)
            rules.append(Rule(perm.effect, verbs, tuple(tokens)))
    return tuple(rules)


def translate(rule: Rule) -> tuple[list[Glob], bool]:
    """Globs covering the rule (a superset, except for dropped allows) and whether they are exact.

    Exact means the globs match the rule's paths and nothing else under either ``*`` reading:
    no single-segment wildcards, and a tenant that is a plain literal. An allow whose tenant is
    not (it could smuggle ``*`` or ``/`` into the policy) yields nothing; a deny gets ``*``.
    """
    if rule.tokens == (ANY,) and rule.verbs == ALL_VERBS:
        return [Glob(None)], True
    parts: list[str] = []
    exact = True
    rest = bool(rule.tokens) and rule.tokens[-1] == ANY
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
    return [Glob(v, p) for v in verbs for p in variants], exact


def prune(globs: Iterable[Glob]) -> tuple[Glob, ...]:
    """Drop duplicates and globs another one already covers (keeps the policy small)."""
    unique = set(globs)
    if Glob(None) in unique:
        return (Glob(None),)
    # Only a glob ending in ``*`` covers another (two distinct ones never cover each other), and
    # only one whose first part is ``*`` or the other's first part: index them by that.
    wide: dict[tuple[str | None, str | None], list[Glob]] = {}
    for g in unique:
        if g.parts[-1:] == ("*",):
            wide.setdefault((g.verb, g.parts[0] if len(g.parts) > 1 else None), []).append(g)

    def covered(g: Glob) -> bool:
        heads = (None, "*", g.parts[0]) if g.parts else (None,)
        return any(w != g and w.covers(g) for h in heads for w in wide.get((g.verb, h), ()))

    return tuple(
        sorted((g for g in unique if not covered(g)), key=lambda g: (g.verb or "", g.parts))
    )
