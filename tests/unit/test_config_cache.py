"""The warm cache re-reads config only when the version changes, checked every few seconds."""

from __future__ import annotations

import pytest

from gatekeeper.clock import FakeClock
from gatekeeper.identity.api_keys import ApiKeyRecord, generate_key
from gatekeeper.rbac.model import Permission, Role, RoleAssignment
from gatekeeper.store.config_cache import ConfigCache
from gatekeeper.store.config_store import InMemoryConfigStore


def setup() -> tuple[InMemoryConfigStore, FakeClock, ConfigCache]:
    store = InMemoryConfigStore()
    store.put(Role(name="reader", permissions=(Permission(path="/x"),)))
    clock = FakeClock()
    return store, clock, ConfigCache(store, clock=clock, refresh_seconds=5)


def test_snapshot_is_cached_between_checks() -> None:
    store, clock, cache = setup()
    assert "reader" in cache.snapshot().roles
    reads = store.reads
    for _ in range(100):
        cache.snapshot()
    assert store.reads == reads
    clock.advance(5)
    cache.snapshot()
    assert store.reads == reads + 1  # one version check, no reload: version unchanged


def test_change_takes_effect_within_the_refresh_bound() -> None:
    store, clock, cache = setup()
    cache.snapshot()
    store.put(Role(name="writer"))
    clock.advance(4.9)
    assert "writer" not in cache.snapshot().roles
    clock.advance(0.1)
    assert "writer" in cache.snapshot().roles


def test_keys_and_assignments_are_cached_per_version() -> None:
    store, clock, cache = setup()
    new = generate_key("gk")
    record = ApiKeyRecord(key_id=new.key_id, secret_hash=new.secret_hash, principal_id="p")
    store.put(record, RoleAssignment(principal_id="p", tenant="t", roles=("reader",)))
    assert cache.api_key(new.key_id) == record
    assert cache.api_key("ffffffffffffffff") is None
    assert cache.assignments("p")[0].roles == ("reader",)
    reads = store.reads
    cache.api_key(new.key_id)
    cache.api_key("ffffffffffffffff")  # negative results are cached too
    cache.assignments("p")
    assert store.reads == reads

    store.put(record.model_copy(update={"status": "revoked"}))
    clock.advance(5)
    found = cache.api_key(new.key_id)
    assert found is not None and found.status == "revoked"


def test_cache_is_bounded() -> None:
    store, _, _ = setup()
    cache = ConfigCache(store, clock=FakeClock(), max_entries=3)
    for i in range(10):
        cache.api_key(f"{i:016x}")
    assert len(cache._keys) == 3


class FlakyStore(InMemoryConfigStore):
    fail = False

    def get_version(self) -> int:
        if self.fail:
            raise ConnectionError("dynamodb down")
        return super().get_version()


def test_failed_check_raises_and_is_retried_on_the_next_request() -> None:
    store = FlakyStore()
    clock = FakeClock()
    cache = ConfigCache(store, clock=clock, refresh_seconds=5)
    cache.snapshot()
    clock.advance(5)
    store.fail = True
    with pytest.raises(ConnectionError):
        cache.snapshot()
    with pytest.raises(ConnectionError):  # not marked as checked: fails again, never stale
        cache.snapshot()
    store.fail = False
    assert cache.snapshot().version == 0
