"""Bounds on what a credential can make the authorizer carry: principal ids, response size."""

from __future__ import annotations

import json
from typing import Any

from gatekeeper.testing.events import http_api_event, rest_request_event, rest_token_event
from tests.conftest import World, make_world


def size(response: dict[str, Any] | None) -> int:
    assert response is not None
    return len(json.dumps(response, separators=(",", ":")).encode())


def test_a_5400_character_sub_is_refused_cleanly(world: World) -> None:
    """It produced an 11 KB response and a DynamoDB key longer than DynamoDB allows."""
    token = world.token("s" * 5400)
    result = world.authorizer.authorize(rest_token_event(f"Bearer {token}", "GET", "/orders"))
    assert result.unauthorized and result.response is None
    assert result.audit.reason == "invalid_principal_id"
    assert result.audit.decision == "unauthorized"
    assert result.audit.principal_id is None
    assert [e.reason for e in world.audit.events] == ["invalid_principal_id"]


def test_a_sub_with_control_characters_is_refused(world: World) -> None:
    token = world.token("alice\r\nx-injected: 1")
    result = world.authorizer.authorize(rest_token_event(f"Bearer {token}", "GET", "/orders"))
    assert result.unauthorized and result.audit.reason == "invalid_principal_id"


def test_an_ordinary_long_sub_still_works(world: World) -> None:
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token('u' * 400)}", "GET", "/orders")
    )
    assert not result.unauthorized and result.audit.reason != "invalid_principal_id"


def small_world(dynamodb: Any, jwks_server: Any, signing_key: Any, **settings: Any) -> World:
    return make_world(
        dynamodb,
        jwks_server,
        signing_key,
        response_max_bytes=2048,
        policy_max_bytes=1024,
        **settings,
    )


def test_a_response_over_the_bound_becomes_a_small_deny(
    dynamodb: Any, jwks_server: Any, signing_key: Any
) -> None:
    world = small_world(dynamodb, jwks_server, signing_key)
    scopes = " ".join(f"orders.scope-{i:04d}" for i in range(150))  # ~3 KB into the context
    token = world.token(scope=scopes)
    result = world.authorizer.authorize(
        rest_request_event({"Authorization": f"Bearer {token}"}, "GET", "/orders")
    )
    assert not result.unauthorized
    assert result.audit.reason == "response_too_large" and result.audit.decision == "deny"
    assert size(result.response) <= 2048
    assert result.response is not None
    assert result.response["context"] == {"reason": "response_too_large"}
    statements = result.response["policyDocument"]["Statement"]
    assert {s["Effect"] for s in statements} == {"Deny"}
    # the same caller without the huge claim is allowed, within the bound
    ok = world.authorizer.authorize(
        rest_request_event({"Authorization": f"Bearer {world.token()}"}, "GET", "/orders")
    )
    assert ok.audit.decision == "allow" and size(ok.response) <= 2048


def test_a_simple_response_over_the_bound_is_not_authorized(
    dynamodb: Any, jwks_server: Any, signing_key: Any
) -> None:
    world = small_world(dynamodb, jwks_server, signing_key)
    scopes = " ".join(f"orders.scope-{i:04d}" for i in range(150))
    result = world.authorizer.authorize(
        http_api_event({"authorization": f"Bearer {world.token(scope=scopes)}"}, "GET", "/orders")
    )
    assert result.response == {"isAuthorized": False, "context": {"reason": "response_too_large"}}
    assert result.audit.reason == "response_too_large"


def test_response_bound_must_leave_room_beside_the_policy() -> None:
    import pytest

    from gatekeeper.config import Settings, SettingsError

    with pytest.raises(SettingsError, match="RESPONSE_MAX_BYTES"):
        Settings.from_env(
            {
                "GATEKEEPER_CONFIG_TABLE": "cfg",
                "GATEKEEPER_POLICY_MAX_BYTES": "8192",
                "GATEKEEPER_RESPONSE_MAX_BYTES": "8192",
            }
        )
