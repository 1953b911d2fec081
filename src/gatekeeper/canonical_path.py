"""Canonical request paths: the only paths a decision is ever made on.

A backend, a proxy or a framework router may normalise a path before it routes it (resolve
``.``/``..``, merge ``//``, decode ``%2F`` or ``%61``), while RBAC and IAM compare it as sent. If
the two readings differ, a rule that denies ``/admin/**`` can be walked around with
``/orders/../admin/users``. Whether API Gateway forwards such paths unchanged varies by API type
and integration, so Gatekeeper does not bet on it: a path that is not canonical is refused
(401 ``non_canonical_path``, before any signature work), and every policy that allows anything
also carries :data:`NON_CANONICAL_GLOBS` as Deny statements, so a cached Allow never covers one.

Canonical here means: starts with ``/``; no empty segment (one trailing ``/`` is kept as sent);
no ``.`` or ``..`` segment (nor ``.;x``/``..;x``, which servlet containers read as dot segments);
no backslash; every character an RFC 3986 ``pchar`` or a non-ASCII character that Unicode
compatibility normalisation (NFKC) leaves unchanged; and percent-escapes only in upper-case hex
and only for characters that *need* escaping: never ``/``, ``\\``, ``%`` or ``.``, never a letter,
digit, ``-``, ``_`` or ``~`` (which a decoder would turn into a different but valid path), never a
control character.

>>> canonical_path("/orders/o-1")
'/orders/o-1'
>>> canonical_path("/users/ann%40example.com")
'/users/ann%40example.com'
>>> canonical_path("/orders/../admin")
Traceback (most recent call last):
...
gatekeeper.errors.NonCanonicalPath: dot segment in request path
"""

from __future__ import annotations

import re
import unicodedata

from gatekeeper.errors import NonCanonicalPath

# RFC 3986 pchar without pct-encoded: unreserved / sub-delims / ":" / "@".
_PCHAR = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
)
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Escapes that decode to something a normaliser treats as path structure or as another path.
_NEVER_ESCAPED = _UNRESERVED | frozenset("/\\%")
_MAX_PATH = 8192

NON_CANONICAL_GLOBS: tuple[str, ...] = (
    "*/./*",
    "*/.",
    "*/../*",
    "*/..",
    "*/.;*",
    "*/..;*",
    "*//*",
    "*\\*",
    "*%2F*",
    "*%2f*",
    "*%5C*",
    "*%5c*",
    "*%2E*",
    "*%2e*",
    "*%25*",
)
"""Resource suffixes (after ``{apiId}/{stage}/``) matching every ARN whose path has a dot
segment, an empty segment, a backslash, or an escaped separator, dot or percent sign.

IAM's ``*`` matches across ``/``, so ``*/../*`` covers ``GET/a/../b`` at any depth. Escaped
letters and lower-case escapes cannot be listed compactly as globs: the authorizer refuses them,
but a cached policy does not; they matter only to a backend that decodes before it routes.
"""


def canonical_path(path: str) -> str:
    """Return ``path`` if it is canonical; raise :class:`NonCanonicalPath` naming the problem."""
    if not path.startswith("/"):
        raise NonCanonicalPath("request path does not start with '/'")
    if len(path) > _MAX_PATH:
        raise NonCanonicalPath("request path is too long")
    if path == "/":
        return path
    body = path[1:-1] if path.endswith("/") else path[1:]
    for segment in body.split("/"):
        _check_segment(segment)
    return path


def _check_segment(segment: str) -> None:
    if segment == "":
        raise NonCanonicalPath("empty segment in request path")
    if segment.split(";", 1)[0] in (".", ".."):
        raise NonCanonicalPath("dot segment in request path")
    for char in _ESCAPE.sub("", segment):
        if char in _PCHAR:
            continue
        if char == "%":
            raise NonCanonicalPath("malformed percent-escape in request path")
        if char == "\\":
            raise NonCanonicalPath("backslash in request path")
        if ord(char) < 0x80 or unicodedata.category(char)[0] in "CZ":
            raise NonCanonicalPath("character not allowed in a request path")
        if unicodedata.normalize("NFKC", char) != char:
            raise NonCanonicalPath("character that Unicode normalisation changes in request path")
    for match in _ESCAPE.finditer(segment):
        hex_digits = match.group(1)
        if hex_digits != hex_digits.upper():
            raise NonCanonicalPath("lower-case percent-escape in request path")
        code = int(hex_digits, 16)
        if code < 0x20 or code == 0x7F or chr(code) in _NEVER_ESCAPED:
            raise NonCanonicalPath("ambiguous percent-escape in request path")
