"""Rate limits and brute-force blocking through the authorizer, against moto DynamoDB."""

from __future__ import annotations

from typing import Any

import pytest

from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.testing import LocalJwksServer, SigningKey
from gatekeeper.testing.events import rest_request_event, rest_token_event
from tests.conftest import World, make_world
from tests.integration.test_authorizer import allowed


@pytest.fixture
def limited(dynamodb: Any, jwks_server: LocalJwksServer, signing_key: SigningKey) -> World:
    world = make_world(dynamodb, jwks_server, signing_key, counters=True, brute_force_threshold=3)
    world.store.put(
        LimitRule(rule_id="per-principal", scope="principal", limit=3, window="minute"),
        LimitRule(
            rule_id="orders-post",
            scope="tenant",
            limit=100,
            window="hour",
            match={"methods": ["POST"], "path": "/orders"},
        ),
    )
    return world


def test_rate_limited_request_is_denied_with_headers_context(limited: World) -> None:
    event = rest_token_event(f"Bearer {limited.token()}", "GET", "/orders")
    results = [limited.authorizer.authorize(event) for _ in range(4)]
    assert [allowed(r) for r in results] == [True, True, True, False]
    ok, denied = results[0], results[3]
    assert ok.response is not None and ok.response["context"]["rateLimitRemaining"] == 2
    assert ok.response["context"]["rateLimitPolicy"] == '"per-principal";q=3;w=60'
    assert denied.response is not None and not denied.unauthorized
    ctx = denied.response["context"]
    assert ctx["reason"] == "rate_limited"
    assert ctx["rateLimitLimit"] == 3 and ctx["rateLimitRemaining"] == 0
    assert 1 <= ctx["retryAfter"] <= 60
    assert denied.audit.decision == "deny" and denied.audit.reason == "rate_limited"
    assert denied.audit.rate_limit is not None
    assert denied.audit.rate_limit.rule_id == "per-principal"
    assert denied.audit.rate_limit.counter == 3 and denied.audit.rate_limit.limited


def test_rbac_denials_consume_no_quota(limited: World) -> None:
    token = f"Bearer {limited.token()}"
    for _ in range(5):
        assert not allowed(
            limited.authorizer.authorize(rest_token_event(token, "GET", "/admin/users"))
        )
    assert allowed(limited.authorizer.authorize(rest_token_event(token, "GET", "/orders")))


def test_rejection_by_one_rule_leaves_the_other_counter_unchanged(limited: World) -> None:
    token = f"Bearer {limited.token()}"
    post = rest_token_event(token, "POST", "/orders")
    for _ in range(3):
        assert allowed(limited.authorizer.authorize(post))
    before = _count(limited, "orders-post", "acme")
    assert before == 3
    for _ in range(3):
        limited.authorizer._limiter._rejected.clear()  # make each one reach DynamoDB
        assert not allowed(limited.authorizer.authorize(post))
    assert _count(limited, "orders-post", "acme") == before


def _count(world: World, rule_id: str, scope_key: str) -> int:
    from tests.conftest import COUNTERS

    items = world.client.query(
        TableName=COUNTERS,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RL#{rule_id}#{scope_key}"}},
    )["Items"]
    return sum(int(i["count"]["N"]) for i in items)


def test_brute_force_blocks_the_ip_before_any_signature_check(
    limited: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {"x-api-key": limited.keys.active[:-3] + "AAA"}
    for _ in range(3):
        result = limited.authorizer.authorize(rest_request_event(bad, "GET", "/orders"))
        assert result.unauthorized
    good = rest_request_event({"Authorization": f"Bearer {limited.token()}"}, "GET", "/orders")
    verify_calls: list[str] = []
    monkeypatch.setattr(limited.authorizer._jwt, "verify", verify_calls.append)
    blocked = limited.authorizer.authorize(good)
    assert not allowed(blocked) and blocked.audit.reason == "blocked"
    assert verify_calls == []  # rejected before any signature work
    assert blocked.response is not None and blocked.response["context"]["retryAfter"] > 800
    other_ip = rest_request_event(
        {"Authorization": f"Bearer {limited.token()}"}, "GET", "/orders", source_ip="198.51.100.1"
    )
    monkeypatch.undo()
    assert allowed(limited.authorizer.authorize(other_ip))


def test_block_ends_after_the_cooling_off_time(limited: World) -> None:
    bad = {"x-api-key": limited.keys.active[:-3] + "AAA"}
    for _ in range(3):
        limited.authorizer.authorize(rest_request_event(bad, "GET", "/orders"))
    good = rest_request_event({"Authorization": f"Bearer {limited.token()}"}, "GET", "/orders")
    assert limited.authorizer.authorize(good).audit.reason == "blocked"
    limited.clock.advance(900)
    token = {"Authorization": f"Bearer {limited.token()}"}
    assert allowed(limited.authorizer.authorize(rest_request_event(token, "GET", "/orders")))


def test_blocklist_failure_fails_closed(limited: World) -> None:
    def boom(**_: Any) -> None:
        raise ConnectionError("down")

    limited.client.meta.events.register("before-call.dynamodb.GetItem", boom)
    event = rest_request_event({"Authorization": f"Bearer {limited.token()}"}, "GET", "/orders")
    result = limited.authorizer.authorize(event)
    assert not allowed(result) and result.audit.reason == "blocklist_unavailable"


def test_limiter_failure_follows_each_rules_policy(limited: World) -> None:
    limited.store.put(
        LimitRule(
            rule_id="login",
            scope="ip",
            limit=5,
            window="minute",
            on_error="closed",
            match={"path": "/health"},
        ),
    )
    token = {"Authorization": f"Bearer {limited.token()}"}
    limited.authorizer.authorize(rest_request_event(token, "GET", "/orders"))  # warm everything

    def boom(**_: Any) -> None:
        raise ConnectionError("down")

    limited.client.meta.events.register("before-call.dynamodb.UpdateItem", boom)
    opened = limited.authorizer.authorize(rest_request_event(token, "GET", "/orders"))
    assert allowed(opened)  # fail open: ordinary rule
    assert opened.audit.rate_limit is not None and opened.audit.rate_limit.errors == (
        "per-principal",
    )
    closed = limited.authorizer.authorize(rest_request_event(token, "GET", "/health"))
    assert not allowed(closed) and closed.audit.reason == "limiter_unavailable"


def test_no_counters_table_is_never_a_silent_allow(world: World) -> None:
    world.store.put(
        LimitRule(rule_id="strict", scope="principal", limit=1, window="minute", on_error="closed")
    )
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    )
    assert not allowed(result) and result.audit.reason == "limiter_unavailable"


def test_default_limits_from_settings_apply_unless_overridden(
    dynamodb: Any, jwks_server: LocalJwksServer, signing_key: SigningKey
) -> None:
    default = {"rule_id": "default-ip", "scope": "principal", "limit": 1, "window": "minute"}
    world = make_world(dynamodb, jwks_server, signing_key, counters=True, default_limits=[default])
    event = rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    assert allowed(world.authorizer.authorize(event))
    assert not allowed(world.authorizer.authorize(event))
    world.store.put(LimitRule.model_validate({**default, "limit": 100}))  # stored rule wins
    world.clock.advance(5)  # the new version also drops the cached rejection
    assert allowed(world.authorizer.authorize(event))


def test_flag_mode_allows_with_rate_limited_context_for_a_429_integration(
    dynamodb: Any, jwks_server: LocalJwksServer, signing_key: SigningKey
) -> None:
    world = make_world(
        dynamodb, jwks_server, signing_key, counters=True, rate_limit_response="flag"
    )
    world.store.put(LimitRule(rule_id="one", scope="principal", limit=1, window="minute"))
    event = rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    first = world.authorizer.authorize(event)
    assert first.response is not None and "rateLimited" not in first.response["context"]
    flagged = world.authorizer.authorize(event)
    assert allowed(flagged)  # reaches the integration, which answers 429 from the context
    assert flagged.response is not None
    ctx = flagged.response["context"]
    assert ctx["rateLimited"] is True and ctx["reason"] == "rate_limited" and ctx["retryAfter"] >= 1
    assert flagged.audit.decision == "deny" and flagged.audit.reason == "rate_limited"
    # an RBAC denial is still a Deny in flag mode
    forbidden = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token()}", "DELETE", "/orders/1")
    )
    assert not allowed(forbidden)


def test_a_policy_that_cannot_express_the_decision_consumes_no_quota(
    limited: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    import gatekeeper.authorizer as module
    from gatekeeper.policy_builder import policy_for_request as real

    def refusing(*args: Any) -> Any:
        return dataclasses.replace(real(*args), allows_request=False)

    monkeypatch.setattr(module, "policy_for_request", refusing)
    event = rest_token_event(f"Bearer {limited.token()}", "GET", "/health")
    result = limited.authorizer.authorize(event)
    assert result.audit.decision == "deny" and result.audit.reason == "policy_mismatch"
    assert result.limit is None
    assert _count(limited, "per-principal", "corp:alice") == 0
