"""Warm-container cache of config data, invalidated by the config version.

The authorizer must not read DynamoDB for RBAC on every request, yet a role change or a key
revocation must take effect within a known bound. So everything read from the store is cached
until the version item changes, and the version item is read at most every
``refresh_seconds`` (default 5 s): the bound is ``refresh_seconds`` plus one request.

A failed version check is not recorded as a check: the error reaches the caller (which denies)
and the next request tries again, so a failing store can never extend the life of stale rules.
Every read behind the cache must be strongly consistent: an answer is kept until the *next*
version, so an eventually consistent read made just after a change (a revoked key, a removed
assignment) would keep the old data alive indefinitely, not for one refresh interval.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from gatekeeper.clock import Clock, system_clock
from gatekeeper.identity.api_keys import ApiKeyRecord
from gatekeeper.rbac.model import ConfigSnapshot, RoleAssignment
from gatekeeper.store.config_store import ConfigStore

T = TypeVar("T")


class ConfigCache:
    def __init__(
        self,
        store: ConfigStore,
        *,
        clock: Clock = system_clock,
        refresh_seconds: float = 5.0,
        max_entries: int = 10_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._refresh_seconds = refresh_seconds
        self._max_entries = max_entries
        self._snapshot: ConfigSnapshot | None = None
        self._checked_at = float("-inf")
        self._assignments: dict[str, tuple[RoleAssignment, ...]] = {}
        self._keys: dict[str, ApiKeyRecord | None] = {}

    @property
    def version(self) -> int | None:
        return self._snapshot.version if self._snapshot else None

    def snapshot(self) -> ConfigSnapshot:
        self._refresh_if_due()
        assert self._snapshot is not None
        return self._snapshot

    def assignments(self, principal_id: str) -> tuple[RoleAssignment, ...]:
        self._refresh_if_due()
        return self._memo(self._assignments, principal_id, self._store.get_assignments)

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        """Unknown ids are cached too (until the next version), so guessing ids costs no reads."""
        self._refresh_if_due()
        return self._memo(self._keys, key_id, self._store.get_api_key)

    def _memo(self, cache: dict[str, T], key: str, load: Callable[[str], T]) -> T:
        if key in cache:
            return cache[key]
        value = load(key)
        if len(cache) >= self._max_entries:
            del cache[next(iter(cache))]  # oldest first: dicts keep insertion order
        cache[key] = value
        return value

    def _refresh_if_due(self) -> None:
        now = self._clock()
        if self._snapshot is not None and now - self._checked_at < self._refresh_seconds:
            return
        if self._snapshot is None or self._store.get_version() != self._snapshot.version:
            snapshot = self._store.load_snapshot()
            self._assignments.clear()
            self._keys.clear()
            self._snapshot = snapshot
        self._checked_at = now
