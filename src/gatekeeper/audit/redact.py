"""Defence in depth: scrub anything credential-shaped from archived and quarantined data.

Producers never put a credential in an audit event, but free-text fields (path, user agent,
request id) are attacker-controlled, and a quarantined record is whatever arrived. So every
string the sink writes passes through :func:`redact_text`: JWTs (and JWEs), Gatekeeper API keys
(the key id is kept: it is not secret and identifies the key), bearer/basic credentials,
``name=value`` pairs whose name says secret, AWS access key ids, PEM private keys and long
mixed-case tokens. Dict values under a secret-sounding key are replaced whole.

It errs towards redacting: a false positive costs a ``[REDACTED]`` in an audit field, a false
negative leaks a credential into a seven-year archive.
"""

from __future__ import annotations

import re
from typing import Any

from gatekeeper.audit.event import AuditEvent

MARK = "[REDACTED]"

_SECRET_NAMES = (
    r"(?:password|passwd|pwd|secret|token|api[_-]?key|x-api-key|authorization|signature|cookie"  # noqa: S105
    r"|session)"
)
_NAME_HINTS = ("pass", "pwd", "secret", "token", "key", "authorization", "signature", "cookie",
               "session", "bearer", "basic", "digest")  # fmt: skip
_LONG = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")


def _mixed(match: re.Match[str]) -> str:
    """A long run mixing upper case, lower case and digits looks random: a secret."""
    run = match.group()
    upper, lower = any(c.isupper() for c in run), any(c.islower() for c in run)
    return MARK if upper and lower and any(c.isdigit() for c in run) else run


# (cheap literal pre-check, pattern, replacement); no pattern matches a quote or a backslash,
# so redacting a serialized JSON document keeps it valid.
_RULES: tuple[tuple[tuple[str, ...], re.Pattern[str], str | Any], ...] = (
    (("PRIVATE KEY",), re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[^\"]*?(?:-----END [A-Z ]*PRIVATE KEY-----|(?=\")|$)"), MARK),  # noqa: E501
    (("eyJ",), re.compile(r"eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,4}"), MARK),
    (("_",), re.compile(r"\b([a-z][a-z0-9]{1,9}_[0-9a-f]{16})_[A-Za-z0-9_-]{8,}"), rf"\1_{MARK}"),
    (_NAME_HINTS, re.compile(r"\b((?i:bearer|basic|digest|token))(\s+|%20)[A-Za-z0-9._~+/=%-]{6,}"), rf"\1\2{MARK}"),  # noqa: E501
    (_NAME_HINTS, re.compile(rf"((?i:{_SECRET_NAMES})[\"']?\s*(?:[:=]|%3[Dd])\s*[\"']?)[^\"'\s,;&}}\\]+"), rf"\1{MARK}"),  # noqa: E501
    (("AKIA", "ASIA"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MARK),
    (("",), _LONG, _mixed),
)  # fmt: skip
_SECRET_KEY = re.compile(rf"(?i)^{_SECRET_NAMES}$|(?i:password|secret|credential|private[_-]?key)")
_MIN_SUSPECT_LEN = 12  # shorter strings cannot hold any of the shapes above


def redact_text(text: str) -> str:
    """``text`` with credentials replaced (works on a serialized JSON document too)."""
    if len(text) < _MIN_SUSPECT_LEN:
        return text
    folded = text.lower()
    for hints, pattern, replacement in _RULES:
        haystack = text if hints[0].isupper() or hints[0] == "eyJ" else folded
        if any(hint in haystack for hint in hints):
            text = pattern.sub(replacement, text)
    return text


def redact_event(event: AuditEvent) -> AuditEvent:
    """``event`` with every free-text field redacted (the same object if nothing changed).

    Cheaper than redacting the serialized record: only these strings come from outside.
    """
    changes: dict[str, Any] = {}
    for name in _EVENT_TEXT:
        value = getattr(event, name)
        if isinstance(value, str) and len(value) >= _MIN_SUSPECT_LEN:
            clean = redact_text(value)
            if clean != value:
                changes[name] = clean
    if any(len(role) >= _MIN_SUSPECT_LEN for role in event.roles):
        roles = tuple(redact_text(role) for role in event.roles)
        if roles != event.roles:
            changes["roles"] = roles
    return event.model_copy(update=changes) if changes else event


_EVENT_TEXT = (
    "request_id", "reason", "principal_id", "tenant", "auth_method", "issuer", "key_id",
    "event_kind", "event_shape", "api_id", "stage", "method", "path", "route_key", "source_ip",
    "user_agent", "matched_rule", "policy_scope",
)  # fmt: skip


MAX_DEPTH = 32
"""Deeper structures are cut (:data:`CUT_MARK`): recursion stays bounded whatever arrives."""
CUT_MARK = "[CUT: nested too deep]"


def redact(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` (JSON-like) with every string redacted and secret-named keys blanked.

    Containers nested deeper than ``max_depth`` are replaced by :data:`CUT_MARK`, so hostile
    input (a quarantined record is whatever arrived) cannot exhaust the stack here or in the
    ``json.dumps`` that follows.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict | list | tuple) and max_depth <= 0:
        return CUT_MARK
    if isinstance(value, dict):
        return {
            k: (
                MARK
                if isinstance(k, str) and _SECRET_KEY.search(k) and v
                else redact(v, max_depth - 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, max_depth - 1) for v in value]
    return value
