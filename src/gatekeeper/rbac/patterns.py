"""Path patterns shared by RBAC permissions and rate-limit rules (see :mod:`gatekeeper.rbac.model`
for the syntax). Depends on nothing of ours, so both can import it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"]
HTTP_METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

TENANT_PARAM = "tenant"
DEFAULT_TENANT = "default"
"""Tenant of role assignments for principals that carry no tenant."""
_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
# Characters API Gateway allows in resource paths; wildcards and braces have meaning here.
LITERAL_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=:@%-]+$")


@dataclass(frozen=True, slots=True)
class Segment:
    """One parsed segment: ``literal``, ``one`` (``*``, ``{param}``), ``tenant`` or ``rest``."""

    kind: Literal["literal", "one", "tenant", "rest"]
    value: str = ""


def parse_pattern(pattern: str) -> tuple[Segment, ...]:
    """Parse and validate a path pattern; raises ``ValueError`` naming the bad segment."""
    if not pattern.startswith("/"):
        raise ValueError(f"path pattern must start with '/': {pattern!r}")
    if pattern == "/":
        return ()
    raw = pattern[1:].split("/")
    segments: list[Segment] = []
    for i, part in enumerate(raw):
        if part == "":
            raise ValueError(f"empty segment in path pattern {pattern!r}")
        if part == "**":
            if i != len(raw) - 1:
                raise ValueError(f"'**' may only be the last segment: {pattern!r}")
            segments.append(Segment("rest"))
        elif part == "*":
            segments.append(Segment("one"))
        elif m := _PARAM.match(part):
            kind: Literal["tenant", "one"] = "tenant" if m.group(1) == TENANT_PARAM else "one"
            segments.append(Segment(kind, m.group(1)))
        elif LITERAL_SEGMENT.match(part):
            segments.append(Segment("literal", part))
        else:
            raise ValueError(f"invalid segment {part!r} in path pattern {pattern!r}")
    return tuple(segments)


def split_path(path: str) -> tuple[str, ...]:
    """Split a concrete request path into segments (``/`` is the empty tuple)."""
    return tuple(p for p in path.split("/") if p)


def path_matches(segments: tuple[Segment, ...], path: tuple[str, ...], tenant: str | None) -> bool:
    """Match parsed pattern segments against concrete path segments."""
    for i, seg in enumerate(segments):
        if seg.kind == "rest":
            return True
        if i >= len(path):
            return False
        if seg.kind == "literal" and path[i] != seg.value:
            return False
        if seg.kind == "tenant" and (tenant is None or path[i] != tenant):
            return False
    return len(segments) == len(path)


_PATTERN_CACHE: dict[str, tuple[Segment, ...]] = {}


def parsed_pattern(path: str) -> tuple[Segment, ...]:
    """:func:`parse_pattern`, memoised: patterns are few and matched on every request."""
    found = _PATTERN_CACHE.get(path)
    if found is None:
        found = _PATTERN_CACHE[path] = parse_pattern(path)
    return found


def _upper_methods(value: object) -> object:
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, list | tuple):
        return tuple(v.upper() if isinstance(v, str) else v for v in value)
    return value


def _check_methods(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("at least one method (or '*') is required")
    if "*" in value and len(value) > 1:
        raise ValueError("'*' already covers every method; list it alone")
    return value


def _check_pattern(value: str) -> str:
    parse_pattern(value)
    return value


Methods = Annotated[
    tuple[HttpMethod, ...], BeforeValidator(_upper_methods), AfterValidator(_check_methods)
]
"""HTTP methods as a field: upper-cased, non-empty, ``*`` alone."""

PathPattern = Annotated[str, AfterValidator(_check_pattern)]
"""A path pattern as a field, validated when the model is built."""
