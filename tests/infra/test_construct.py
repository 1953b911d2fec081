"""``GatekeeperAuthorizer`` on its own: the checks that protect users from bad settings."""

from __future__ import annotations

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_lambda as lambda_

from gatekeeper_cdk import GatekeeperAuthorizer


def _fn(stack: Stack) -> lambda_.IFunction:
    return lambda_.Function.from_function_arn(
        stack, "Fn", "arn:aws:lambda:eu-west-1:111111111111:function:gatekeeper-authorizer"
    )


def test_default_ttl_is_zero() -> None:
    stack = Stack(App(), "S")
    gk = GatekeeperAuthorizer(stack, "Gk", function=_fn(stack))
    assert gk.results_cache_ttl.to_seconds() == 0
    assert not gk.caching


def test_ttl_above_api_gateway_maximum_is_refused() -> None:
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match="3600"):
        GatekeeperAuthorizer(stack, "Gk", function=_fn(stack), results_cache_ttl=Duration.hours(2))


def test_caching_chooses_identity_sources_itself() -> None:
    """No user-supplied cache key: the construct derives it (tests/infra/test_caching.py)."""
    stack = Stack(App(), "S")
    gk = GatekeeperAuthorizer(
        stack, "Gk", function=_fn(stack), results_cache_ttl=Duration.seconds(60)
    )
    assert gk.rest_identity_sources[0] == "method.request.header.Authorization"
    assert gk.http_identity_sources[-2:] == ["$context.httpMethod", "$context.path"]
    assert gk.tenant_header_in_cache_key


def test_publish_routes_needs_the_table() -> None:
    stack = Stack(App(), "S")
    gk = GatekeeperAuthorizer(stack, "Gk", function=_fn(stack))
    with pytest.raises(ValueError, match="config_table"):
        gk.publish_routes("R", api_id="a1b2c3", stage="prod", routes=["GET /orders"])
