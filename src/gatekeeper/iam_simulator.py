"""How API Gateway judges a Lambda authorizer's IAM policy: a small simulator of IAM's
``execute-api:Invoke`` evaluation (explicit Deny, Allow, or neither), with both readings of ``*``.

Used to verify every policy the builder returns, by the API Gateway model in
:mod:`gatekeeper.testing.gateway`, and by ``gatekeeper explain``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Literal

Verdict = Literal["allow", "deny", "implicit_deny"]
INVOKE = "execute-api:Invoke"


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
