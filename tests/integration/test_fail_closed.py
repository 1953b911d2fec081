"""Fail closed: no DynamoDB, JWKS or internal failure ever produces an Allow."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper.rbac.model import Role
from gatekeeper.store import tables
from gatekeeper.testing import public_jwks
from gatekeeper.testing.events import rest_request_event, rest_token_event
from tests.conftest import TABLE, World
from tests.integration.test_authorizer import allowed


def fail_dynamodb(world: World, operation: str = "*", error: Exception | None = None) -> list[str]:
    """Make DynamoDB calls fail (like a network error or timeout); returns the failed calls."""
    failed: list[str] = []

    def boom(model: Any, **_: Any) -> None:
        failed.append(model.name)
        raise error or EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1")

    event = "before-call.dynamodb" + ("" if operation == "*" else f".{operation}")
    world.client.meta.events.register(event, boom, unique_id="fail-dynamodb")
    return failed


def heal_dynamodb(world: World, operation: str = "*") -> None:
    event = "before-call.dynamodb" + ("" if operation == "*" else f".{operation}")
    world.client.meta.events.unregister(event, unique_id="fail-dynamodb")


def test_cold_start_with_dynamodb_down(world: World) -> None:
    failed = fail_dynamodb(world)
    jwt = world.authorizer.authorize(rest_token_event(f"Bearer {world.token()}", "GET", "/orders"))
    assert not allowed(jwt) and jwt.audit.decision == "deny"
    assert jwt.audit.reason == "config_unavailable"
    key = world.authorizer.authorize(rest_token_event(world.keys.active, "GET", "/orders"))
    assert key.unauthorized and key.audit.reason == "store_unavailable"
    assert failed


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1"),
        ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1"),
        RuntimeError("anything at all"),
    ],
)
def test_version_check_failure_on_a_warm_container_denies(world: World, error: Exception) -> None:
    event = rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    assert allowed(world.authorizer.authorize(event))
    world.clock.advance(5)
    fail_dynamodb(world, "GetItem", error)
    result = world.authorizer.authorize(event)
    assert not allowed(result) and result.audit.reason == "config_unavailable"
    heal_dynamodb(world, "GetItem")
    assert allowed(world.authorizer.authorize(event))  # retried at once, not after 5 s


def put_raw(world: World, sk: str, doc: str) -> None:
    world.client.put_item(
        TableName=TABLE, Item={"pk": {"S": tables.RBAC_PK}, "sk": {"S": sk}, "doc": {"S": doc}}
    )
    world.client.update_item(
        TableName=TABLE,
        Key={k: {"S": v} for k, v in tables.version_key().items()},
        UpdateExpression="ADD version :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


@pytest.mark.parametrize(
    ("sk", "doc"),
    [
        ("ROLE#broken", "{not json"),
        ("ROLE#broken", '{"name": "broken", "permissions": [{"path": "no-slash"}]}'),
        ("ROLE#loop", '{"name": "loop", "inherits": ["orders-clerk", "loop2"]}'),
        ("API#x#y", '{"api_id": "x", "stage": "y", "routes": ["NOT A ROUTE"]}'),
    ],
)
def test_bad_data_in_the_table_denies(world: World, sk: str, doc: str) -> None:
    put_raw(world, sk, doc)
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    )
    assert not allowed(result) and result.audit.reason == "config_unavailable"


def test_bad_api_key_record_is_401(world: World) -> None:
    from gatekeeper.identity.api_keys import parse_key

    key_id, _ = parse_key(world.keys.active, "gk")
    world.client.put_item(
        TableName=TABLE,
        Item={**{k: {"S": v} for k, v in tables.apikey_key(key_id).items()}, "doc": {"S": "{}"}},
    )
    world.clock.advance(5)
    put_raw(world, "ROLE#bump", '{"name": "bump"}')  # new version: caches dropped
    result = world.authorizer.authorize(rest_token_event(world.keys.active, "GET", "/orders"))
    assert result.unauthorized and result.audit.reason == "store_unavailable"


def test_unexpected_error_while_deciding_is_deny(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gatekeeper.authorizer as module

    def broken(**_: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(module, "build_base", broken)
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    )
    assert not allowed(result) and result.audit.decision == "deny"
    assert result.audit.reason == "internal_error"


def test_unexpected_error_while_authenticating_is_401(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_token: str) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(world.authorizer._jwt, "verify", broken)
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    )
    assert result.unauthorized and result.audit.reason == "internal_error"


def test_audit_failure_does_not_change_the_decision(world: World) -> None:
    class Broken:
        def emit(self, _event: Any) -> None:
            raise OSError("log pipe closed")

    world.authorizer._emitter = Broken()
    assert allowed(
        world.authorizer.authorize(rest_token_event(f"Bearer {world.token()}", "GET", "/orders"))
    )


def test_jwks_down_cold_is_401_and_warm_keeps_working(world: World) -> None:
    event = rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    world.jwks.fail(500)
    cold = world.authorizer.authorize(event)
    assert cold.unauthorized and cold.audit.reason == "jwks_unavailable"
    world.jwks.serve(public_jwks(world.signing_key))
    world.clock.advance(61)
    assert allowed(world.authorizer.authorize(event))
    world.jwks.fail(500)
    world.clock.advance(3600)
    assert allowed(
        world.authorizer.authorize(rest_token_event(f"Bearer {world.token()}", "GET", "/orders"))
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1), rate=st.floats(0.05, 0.9))
def test_random_dynamodb_failures_never_allow(world: World, seed: int, rate: float) -> None:
    """Across random failure patterns, any request that saw a DynamoDB error is not allowed."""
    rng = random.Random(seed)
    failures: list[str] = []

    def flaky(model: Any, **_: Any) -> None:
        if rng.random() < rate:
            failures.append(model.name)
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1")

    world.client.meta.events.register("before-call.dynamodb", flaky, unique_id="flaky")
    try:
        token = f"Bearer {world.token()}"
        events = [
            rest_token_event(token, "GET", "/orders"),
            rest_token_event(world.keys.active, "GET", "/orders"),
            rest_request_event({"Authorization": token}, "DELETE", "/orders/1"),
        ]
        for _ in range(12):
            world.clock.advance(rng.choice([0.5, 2.5, 5.0]))
            if rng.random() < 0.2:  # a rule change (through the same flaky client) forces reloads
                with contextlib.suppress(EndpointConnectionError):
                    world.store.put(Role(name=f"extra-{rng.randrange(1000)}"))
            before = len(failures)
            result = world.authorizer.authorize(rng.choice(events))
            if len(failures) > before:
                assert not allowed(result), result.audit
    finally:
        world.client.meta.events.unregister("before-call.dynamodb", unique_id="flaky")
