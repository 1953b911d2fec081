"""Rate-limit algorithms over the in-memory counter store, with an injected clock."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gatekeeper.clock import FakeClock
from gatekeeper.rate_limit.brute_force import BruteForceGuard
from gatekeeper.rate_limit.counters import InMemoryCounterStore
from gatekeeper.rate_limit.limiter import Applied, RateLimiter, applicable
from gatekeeper.rate_limit.rules import LimitRule, RuleMatch
from gatekeeper.store import tables

START = 1_800_000_000.0  # a multiple of 60, 3600 and 86400


def rule(**kw: Any) -> LimitRule:
    base: dict[str, Any] = {"rule_id": "r", "scope": "ip", "limit": 3, "window": "minute"}
    return LimitRule.model_validate({**base, **kw})


def setup(**kw: Any) -> tuple[RateLimiter, InMemoryCounterStore, FakeClock]:
    store, clock = InMemoryCounterStore(), FakeClock(START)
    return RateLimiter(store, clock=clock, **kw), store, clock


def allowed(limiter: RateLimiter, *rules: LimitRule, key: str = "1.2.3.4") -> bool:
    return limiter.check([Applied(r, key) for r in rules]).allowed


# --- rules ---------------------------------------------------------------------------------------
def test_rule_validation() -> None:
    with pytest.raises(ValidationError, match="role"):
        rule(scope="role")
    with pytest.raises(ValidationError, match="burst"):
        rule(burst=5)
    with pytest.raises(ValidationError, match="leased"):
        rule(mode="leased", algorithm="token_bucket")
    with pytest.raises(ValidationError, match="rule_id"):
        rule(rule_id="Bad Id")
    with pytest.raises(ValidationError):
        rule(match={"path": "no-slash"})
    assert rule(match={"methods": ["post"]}).match.methods == ("POST",)


def test_applicable_rules_and_scope_keys() -> None:
    rules = [
        rule(rule_id="login", scope="ip", match=RuleMatch(methods=("POST",), path="/login")),
        rule(rule_id="global", scope="global"),
        rule(rule_id="tenant", scope="tenant", match=RuleMatch(api_id="api1")),
        rule(rule_id="key", scope="api_key"),
        rule(rule_id="plan", scope="role", role="free-plan"),
        rule(rule_id="off", scope="global", enabled=False),
    ]
    facts: dict[str, Any] = {
        "api_id": "api1",
        "stage": "prod",
        "tenant": "acme",
        "principal_id": "corp:alice",
        "key_id": None,
        "source_ip": "1.2.3.4",
        "roles": ["free-plan"],
    }
    found = applicable(rules, method="POST", path="/login", **facts)
    assert [(a.rule.rule_id, a.scope_key) for a in found] == [
        ("login", "1.2.3.4"),
        ("global", "*"),
        ("tenant", "acme"),
        ("plan", "corp:alice"),
    ]
    found = applicable(
        rules, method="GET", path="/login", **{**facts, "api_id": "api2", "source_ip": None}
    )
    assert [a.rule.rule_id for a in found] == ["global", "plan"]


# --- fixed window ------------------------------------------------------------------------------
def test_fixed_window_is_exact_and_resets_at_the_window_edge() -> None:
    limiter, _, clock = setup()
    r = rule()
    assert [allowed(limiter, r) for _ in range(4)] == [True, True, True, False]
    clock.advance(59.9)
    assert not allowed(limiter, r)
    clock.advance(0.1)
    assert allowed(limiter, r)


def test_fixed_window_outcome_fields() -> None:
    limiter, _, clock = setup()
    clock.advance(20)
    first = limiter.check([Applied(rule(), "k")])
    assert first.binding is not None
    assert (first.binding.limit, first.binding.remaining, first.binding.reset) == (3, 2, 40)
    limiter.check([Applied(rule(), "k")])
    limiter.check([Applied(rule(), "k")])
    denied = limiter.check([Applied(rule(), "k")])
    assert not denied.allowed and denied.reason == "rate_limited"
    assert denied.binding is not None and denied.binding.retry_after == 40
    assert denied.binding.count == 3


def test_rejections_are_cached_until_the_window_resets() -> None:
    limiter, store, clock = setup()
    r = rule(limit=1)
    assert allowed(limiter, r)
    assert not allowed(limiter, r)
    calls = store.calls
    for _ in range(100):
        assert not allowed(limiter, r)
    assert store.calls == calls  # the abuser costs us no writes
    clock.advance(60)
    assert allowed(limiter, r)


def test_counters_carry_a_ttl_after_the_window() -> None:
    limiter, store, _ = setup()
    allowed(limiter, rule())
    item = store.items[("RL#r#1.2.3.4", str(int(START)))]
    assert item[tables.TTL_ATTRIBUTE] > START + 60


def test_keys_are_counted_separately() -> None:
    limiter, _, _ = setup()
    r = rule(limit=1)
    assert allowed(limiter, r, key="a") and allowed(limiter, r, key="b")
    assert not allowed(limiter, r, key="a")


# --- several rules -----------------------------------------------------------------------------
def test_rejection_by_one_rule_consumes_no_quota_elsewhere() -> None:
    limiter, store, _ = setup()
    loose = rule(rule_id="loose", limit=100, window="hour")
    tight = rule(rule_id="tight", limit=2, window="minute")
    bucket = rule(rule_id="bucket", limit=100, window="minute", algorithm="token_bucket")
    sliding = rule(rule_id="sliding", limit=100, window="minute", algorithm="sliding_window")
    rules = (loose, tight, bucket, sliding)
    assert allowed(limiter, *rules) and allowed(limiter, *rules)
    snapshot = {k: dict(v) for k, v in store.items.items()}
    limiter._rejected.clear()  # force the tight rule to hit the store and reject
    for _ in range(5):
        assert not allowed(limiter, *rules)
        limiter._rejected.clear()
    assert store.items == snapshot


def test_compensation_when_a_later_rule_rejects() -> None:
    """Order is by restrictiveness; make the *later* rule reject and check the give-back."""
    limiter, store, _ = setup()
    first = rule(rule_id="first", limit=5, window="second")  # 5/s: most restrictive by rate
    later = rule(rule_id="later", limit=2, window="day")  # 2/day: checked second
    assert allowed(limiter, first, later) and allowed(limiter, first, later)
    assert not allowed(limiter, first, later)
    assert store.items[("RL#first#1.2.3.4", str(int(START)))]["count"] == 2


def test_most_restrictive_answer_gives_the_headers() -> None:
    limiter, _, _ = setup()
    wide = rule(rule_id="wide", limit=100)
    narrow = rule(rule_id="narrow", limit=5, window="hour")
    decision = limiter.check([Applied(wide, "k"), Applied(narrow, "k")])
    assert decision.binding is not None and decision.binding.rule_id == "narrow"
    assert decision.binding.remaining == 4


def test_shadow_rules_count_but_never_reject() -> None:
    limiter, _, _ = setup()
    shadow = rule(rule_id="shadow", limit=1, shadow=True)
    results = [limiter.check([Applied(shadow, "k")]) for _ in range(3)]
    assert all(r.allowed for r in results)
    assert [o.allowed for r in results for o in r.outcomes] == [True, False, False]


# --- sliding window -----------------------------------------------------------------------------
def test_sliding_window_weighs_the_previous_window() -> None:
    limiter, store, clock = setup()
    r = rule(limit=10, algorithm="sliding_window")
    for _ in range(10):
        assert allowed(limiter, r)
    assert not allowed(limiter, r)
    clock.advance(60 + 30)  # half-way into the next window: previous counts 10 * 0.5 = 5
    results = [allowed(limiter, r) for _ in range(6)]
    assert results == [True] * 5 + [False]
    reads = store.calls
    limiter._rejected.clear()
    allowed(limiter, r)
    assert store.calls == reads + 1  # the closed window's count was cached: one add only


def test_sliding_window_rejection_waits_for_decay() -> None:
    limiter, _, clock = setup()
    r = rule(limit=10, algorithm="sliding_window")
    for _ in range(10):
        allowed(limiter, r)
    clock.advance(60)  # previous = 10, weight 1.0: nothing allowed yet
    decision = limiter.check([Applied(r, "1.2.3.4")])
    assert not decision.allowed
    assert decision.binding is not None and decision.binding.retry_after == 6  # 1/10 of 60 s
    clock.advance(6)
    assert allowed(limiter, r)


# --- token bucket --------------------------------------------------------------------------------
def test_token_bucket_burst_then_refill() -> None:
    limiter, _, clock = setup()
    r = rule(limit=60, window="minute", algorithm="token_bucket", burst=5)  # 1/s, burst 5
    assert [allowed(limiter, r) for _ in range(6)] == [True] * 5 + [False]
    clock.advance(1)
    assert allowed(limiter, r)
    assert not allowed(limiter, r)
    clock.advance(10)  # refills to the burst, not beyond
    assert [allowed(limiter, r) for _ in range(6)] == [True] * 5 + [False]


def test_token_bucket_reports_retry_after() -> None:
    limiter, _, _ = setup()
    r = rule(limit=6, window="minute", algorithm="token_bucket", burst=1)  # one per 10 s
    assert allowed(limiter, r)
    denied = limiter.check([Applied(r, "1.2.3.4")])
    assert denied.binding is not None and denied.binding.retry_after == 10


def test_token_bucket_survives_a_wrong_local_hint() -> None:
    """Another container moved the bucket: the refused write tells us where it is."""
    limiter, store, _ = setup()
    other = RateLimiter(store, clock=limiter.clock)
    r = rule(limit=60, algorithm="token_bucket", burst=3)
    assert allowed(limiter, r)
    assert allowed(other, r) and allowed(other, r)
    assert not allowed(limiter, r)


# --- leased mode ---------------------------------------------------------------------------------
def test_leased_mode_never_exceeds_the_limit_across_containers() -> None:
    store, clock = InMemoryCounterStore(), FakeClock(START)
    containers = [RateLimiter(store, clock=clock) for _ in range(5)]
    r = rule(limit=100, mode="leased")
    granted = 0
    for i in range(1000):
        clock.advance(0.01)
        if clock() >= START + 60:
            break
        granted += allowed(containers[i % 5], r)
    assert granted == 100


def test_leased_mode_writes_far_less_than_once_per_request() -> None:
    limiter, store, clock = setup()
    r = rule(limit=1000, window="minute", mode="leased")
    for _ in range(1000):
        clock.advance(60 / 1000 * 0.999)
        assert allowed(limiter, r)
    assert store.calls / 1000 <= 0.05


def test_leases_are_capped_so_idle_containers_hold_little() -> None:
    limiter, store, clock = setup()
    r = rule(limit=1000, mode="leased")
    for _ in range(50):
        clock.advance(0.001)  # a burst: very high local rate
        allowed(limiter, r)
    count = store.items[("RL#r#1.2.3.4", str(int(START)))]["count"]
    assert count <= 50 + 100  # never more than one lease (10 % of the limit) ahead


# --- failures ----------------------------------------------------------------------------------
def test_fail_open_and_fail_closed() -> None:
    limiter, store, _ = setup()
    store.fail = ConnectionError("dynamodb down")
    open_rule = rule(rule_id="open")
    closed_rule = rule(rule_id="closed", on_error="closed")
    opened = limiter.check([Applied(open_rule, "k")])
    assert opened.allowed and opened.outcomes[0].error
    closed = limiter.check([Applied(closed_rule, "k")])
    assert not closed.allowed and closed.reason == "limiter_unavailable"


# --- brute force -------------------------------------------------------------------------------
def test_brute_force_blocks_after_threshold_and_unblocks_after_cooling_off() -> None:
    store, clock = InMemoryCounterStore(), FakeClock(START)
    guard = BruteForceGuard(store, clock=clock, threshold=3, block_seconds=900)
    assert guard.record_failure("1.2.3.4", None, "invalid_signature") is None
    assert guard.record_failure("1.2.3.4", None, "missing_credentials") is None  # not counted
    assert guard.record_failure("1.2.3.4", None, "invalid_signature") is None
    block = guard.record_failure("1.2.3.4", None, "invalid_signature")
    assert block is not None and block.until == START + 900
    assert guard.blocked("1.2.3.4") is not None
    assert guard.blocked("5.6.7.8") is None
    other = BruteForceGuard(store, clock=clock)  # another container sees the block item
    assert other.blocked("1.2.3.4") is not None
    clock.advance(900)
    assert guard.blocked("1.2.3.4") is None and other.blocked("1.2.3.4") is None


def test_brute_force_counts_per_key_across_ips() -> None:
    store, clock = InMemoryCounterStore(), FakeClock(START)
    guard = BruteForceGuard(store, clock=clock, threshold=3)
    for i in range(2):
        assert guard.record_failure(f"10.0.0.{i}", "abcd", "invalid_api_key_secret") is None
    assert guard.record_failure("10.0.0.9", "abcd", "invalid_api_key_secret") is not None


def test_block_lookups_are_cached() -> None:
    store, clock = InMemoryCounterStore(), FakeClock(START)
    guard = BruteForceGuard(store, clock=clock, cache_seconds=5)
    guard.blocked("1.2.3.4")
    calls = store.calls
    for _ in range(50):
        guard.blocked("1.2.3.4")
    assert store.calls == calls
    clock.advance(5)
    guard.blocked("1.2.3.4")
    assert store.calls == calls + 1


def test_our_own_failures_and_issuer_key_rotation_are_not_counted() -> None:
    store, clock = InMemoryCounterStore(), FakeClock(START)
    guard = BruteForceGuard(store, clock=clock, threshold=1)
    for reason in ("unknown_kid", "jwks_unavailable", "store_unavailable", "internal_error"):
        assert guard.record_failure("1.2.3.4", None, reason) is None
    assert store.items == {}
