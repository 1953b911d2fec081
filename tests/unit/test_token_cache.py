"""The verified-token cache on its own: what it keeps, for how long, and what drops it."""

from __future__ import annotations

from typing import Any

import pytest

from gatekeeper.clock import FakeClock
from gatekeeper.identity.principal import Principal
from gatekeeper.identity.token_cache import MAX_TOKEN_CHARS, TokenCache
from gatekeeper.testing import claims_for, mint, rsa_key

KEY = rsa_key("unit")
URI = "https://idp.example.com/jwks.json"
ALICE = Principal(principal_id="corp:alice", auth_method="jwt", issuer="corp")


def token(clock: FakeClock, ttl: float = 300, **claims: Any) -> str:
    return mint(claims_for("https://idp/", "api", now=clock(), ttl=ttl, extra=claims), KEY)


def fetched(cache: TokenCache) -> None:
    """What the verifier's first JWKS fetch does through :meth:`TokenCache.watch`."""
    cache.watch(lambda uri, timeout, max_bytes: {"keys": []})(URI, 1.0, 1024)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def cache(clock: FakeClock) -> TokenCache:
    cache = TokenCache(max_entries=3, jwks_max_age=3600, clock=clock)
    fetched(cache)
    return cache


def test_a_verified_token_is_remembered_by_its_exact_bytes(
    cache: TokenCache, clock: FakeClock
) -> None:
    first = token(clock)
    assert cache.get(first, config_version=1) is None
    cache.put(first, ALICE, config_version=1)
    assert cache.get(first, config_version=1) is ALICE
    head, body, signature = first.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    assert cache.get(tampered, config_version=1) is None
    assert cache.get(token(clock), config_version=1) is None  # another token, same claims


def test_nothing_is_kept_before_a_jwks_fetch_was_seen(clock: FakeClock) -> None:
    """Wired without :meth:`watch`, the cache could not see keys change: it stays empty."""
    cache = TokenCache(clock=clock)
    first = token(clock)
    cache.put(first, ALICE, config_version=1)
    assert cache.get(first, config_version=1) is None
    assert len(cache) == 0


def test_an_entry_ends_at_the_tokens_exp(cache: TokenCache, clock: FakeClock) -> None:
    first = token(clock, ttl=300)
    cache.put(first, ALICE, config_version=1)
    clock.advance(299)
    assert cache.get(first, config_version=1) is ALICE
    clock.advance(1)
    assert cache.get(first, config_version=1) is None  # no leeway: the verifier decides


def test_an_entry_ends_when_the_key_set_is_due_for_a_re_read(
    cache: TokenCache, clock: FakeClock
) -> None:
    """A hit must not postpone the verifier's max-age re-read of the JWKS."""
    clock.advance(3000)
    long_lived = token(clock, ttl=86_400)
    cache.put(long_lived, ALICE, config_version=1)
    clock.advance(599)
    assert cache.get(long_lived, config_version=1) is ALICE
    clock.advance(1)  # 3600 s since the fetch
    assert cache.get(long_lived, config_version=1) is None


def test_a_config_version_change_drops_everything(cache: TokenCache, clock: FakeClock) -> None:
    first = token(clock)
    cache.put(first, ALICE, config_version=1)
    assert cache.get(first, config_version=2) is None
    assert cache.get(first, config_version=1) is None  # gone, not hidden
    assert len(cache) == 0


def test_any_jwks_fetch_drops_everything_even_a_failed_one(
    cache: TokenCache, clock: FakeClock
) -> None:
    first = token(clock)
    cache.put(first, ALICE, config_version=1)
    fetched(cache)
    assert cache.get(first, config_version=1) is None

    cache.put(first, ALICE, config_version=1)

    def down(uri: str, timeout: float, max_bytes: int) -> Any:
        raise OSError("endpoint down")

    with pytest.raises(OSError, match="endpoint down"):
        cache.watch(down)(URI, 1.0, 1024)
    assert cache.get(first, config_version=1) is None


def test_a_failed_fetch_does_not_extend_the_key_sets_deadline(clock: FakeClock) -> None:
    cache = TokenCache(jwks_max_age=3600, clock=clock)
    fetched(cache)
    clock.advance(3500)

    def down(uri: str, timeout: float, max_bytes: int) -> Any:
        raise OSError("endpoint down")

    with pytest.raises(OSError, match="endpoint down"):
        cache.watch(down)(URI, 1.0, 1024)
    long_lived = token(clock, ttl=86_400)
    cache.put(long_lived, ALICE, config_version=1)
    clock.advance(100)  # 3600 s after the last *successful* fetch
    assert cache.get(long_lived, config_version=1) is None


def test_bounded_oldest_first(cache: TokenCache, clock: FakeClock) -> None:
    tokens = [token(clock) for _ in range(4)]
    for each in tokens:
        cache.put(each, ALICE, config_version=1)
    assert len(cache) == 3
    assert cache.get(tokens[0], config_version=1) is None
    assert all(cache.get(t, config_version=1) is ALICE for t in tokens[1:])


@pytest.mark.parametrize("exp", ["soon", None, True, float("inf")])
def test_a_token_without_a_usable_exp_is_not_kept(
    cache: TokenCache, clock: FakeClock, exp: object
) -> None:
    odd = token(clock, exp=exp)
    cache.put(odd, ALICE, config_version=1)
    assert cache.get(odd, config_version=1) is None


def test_oversized_tokens_are_never_hashed_or_kept(cache: TokenCache, clock: FakeClock) -> None:
    huge = token(clock, padding="x" * MAX_TOKEN_CHARS)
    cache.put(huge, ALICE, config_version=1)
    assert len(cache) == 0
    assert cache.get(huge, config_version=1) is None


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        TokenCache(max_entries=0)


def test_the_first_config_load_is_not_a_change(cache: TokenCache, clock: FakeClock) -> None:
    """The container's first request verifies before the config is read (version None)."""
    first = token(clock)
    cache.put(first, ALICE, config_version=None)
    assert cache.get(first, config_version=7) is ALICE
    assert cache.get(first, config_version=8) is None
