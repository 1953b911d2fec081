"""Principals of JWTs this container has already verified, so a repeated token skips the
signature check.

A bearer token is reused for many requests during its life; verifying its signature again each
time is most of the cost of a JWT decision. The cache holds the :class:`Principal` a token was
verified into, keyed by the SHA-256 of the whole token (header, claims *and* signature: a token
altered in any byte is a different key and is verified from scratch). It only ever answers with
a principal :class:`~gatekeeper.identity.jwt_verifier.JwtVerifier` produced; failures are never
cached, so it cannot turn a 401 into an allow. An entry ends at the earliest of:

- the token's ``exp`` (not ``exp`` + leeway: near its end the token is verified again);
- a config version change (everything is dropped on the first request that sees the new
  version: whatever the config table says about credentials applies, as without the cache);
- any JWKS fetch of any issuer, successful or not (everything is dropped): a withdrawn, revoked
  or replaced signing key is judged again by the verifier the moment the key set is re-read;
- the JWKS max age counted from the oldest successful fetch (``jwks_max_age``): the verifier
  re-reads a key set that old on its next use, and a cache hit must not postpone that re-read.

The JWKS fetches are observed by wrapping the verifier's fetch function (:meth:`watch`); until a
fetch has been observed the cache stores nothing, so a verifier wired without the wrapper can
only make the cache useless, never unsafe. Bounded: at most ``max_entries`` (oldest dropped).

Example::

    tokens = TokenCache(max_entries=10_000, jwks_max_age=3600)
    verifier = JwtVerifier(issuers, fetch=tokens.watch(fetch_jwks))
    principal = tokens.get(token, config_version=v)
    if principal is None:
        principal = verifier.verify(token)  # raises on any failure: nothing is cached
        tokens.put(token, principal, config_version=v)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from gatekeeper.clock import Clock, system_clock
from gatekeeper.identity.principal import Principal

MAX_TOKEN_CHARS: Final = 16_384  # longer than any token the verifier accepts: never hashed
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires_at: float


class TokenCache:
    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        jwks_max_age: float = 3600.0,
        clock: Clock = system_clock,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._jwks_max_age = jwks_max_age
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}
        self._config_version: int | None = None
        self._fetched_at: dict[str, float] = {}  # JWKS URI -> last successful fetch
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, *, config_version: int | None) -> Principal | None:
        """The principal ``token`` was verified into, or None (then verify it, and :meth:`put`)."""
        if config_version != self._config_version:
            self._drop_all(config_version)
        if not self._entries or len(token) > MAX_TOKEN_CHARS:
            return None
        key = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.expires_at:
            self._entries.pop(key, None)
            return None
        return entry.principal

    def put(self, token: str, principal: Principal, *, config_version: int | None) -> None:
        """Remember a principal the verifier just produced from ``token`` (never a failure)."""
        if config_version != self._config_version:
            self._drop_all(config_version)
        if len(token) > MAX_TOKEN_CHARS:
            return
        with self._lock:
            if not self._fetched_at:
                return  # no JWKS fetch observed: we could not tell when its keys change
            jwks_deadline = min(self._fetched_at.values()) + self._jwks_max_age
        exp = _expiry(token)
        if exp is None:
            return
        expires_at = min(exp, jwks_deadline)
        if self._clock() >= expires_at:
            return
        key = hashlib.sha256(token.encode()).digest()
        if key not in self._entries and len(self._entries) >= self._max_entries:
            self._entries.pop(next(iter(self._entries)), None)  # oldest first
        self._entries[key] = _Entry(principal, expires_at)

    def clear(self) -> None:
        self._entries.clear()

    def jwks_changed(self, uri: str | None = None, *, fetched: bool = False) -> None:
        """A key set was (or is being) re-read: every entry is dropped."""
        self._entries.clear()
        if fetched and uri is not None:
            with self._lock:
                self._fetched_at[uri] = self._clock()

    def watch(self, fetch: F) -> F:
        """``fetch`` (the verifier's JWKS fetch function), reporting every call to this cache."""

        def watched(*args: Any, **kwargs: Any) -> Any:
            uri = args[0] if args else kwargs.get("uri")
            uri = uri if isinstance(uri, str) else None
            self.jwks_changed(uri)  # before: a failed fetch drops the entries too
            document = fetch(*args, **kwargs)
            self.jwks_changed(uri, fetched=True)
            return document

        return watched  # type: ignore[return-value]

    def _drop_all(self, config_version: int | None) -> None:
        # None -> a version is the container's first config load, not a change: entries put
        # before it (the very first request) stay. Any later difference drops everything.
        if self._config_version is not None:
            self._entries.clear()
        self._config_version = config_version


def _expiry(token: str) -> float | None:
    """The ``exp`` of a token the verifier has just accepted (so its payload is well formed)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float) or not math.isfinite(exp):
        return None
    return float(exp)
