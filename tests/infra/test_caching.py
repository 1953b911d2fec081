"""Caching safe by construction: identity sources and TTL per API type, and the refusals.

API Gateway caches an authorizer answer per identity-source values and reuses it for other
requests; with caching on, every identity source is also mandatory (401 without it). These tests
pin what ``GatekeeperAuthorizer`` configures for each API type and TTL (the README's table).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as apigwv2_int
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from gatekeeper_cdk import GatekeeperAuthorizer
from gatekeeper_cdk.authorizer_construct import UnsafeCachingError
from tests.infra.conftest import Synth
from tests.infra.test_checks import CFN_LINT

FN_ARN = "arn:aws:lambda:eu-west-1:111111111111:function:gatekeeper-authorizer"
BACKEND_ARN = "arn:aws:lambda:eu-west-1:111111111111:function:backend"

REST_KEYED = "method.request.header.Authorization,method.request.header.x-tenant-id"
HTTP_KEYED = [
    "$request.header.Authorization",
    "$request.header.x-tenant-id",
    "$context.httpMethod",
    "$context.path",
]


def _gatekeeper(stack: Stack, ttl: int, **kwargs: Any) -> GatekeeperAuthorizer:
    fn = lambda_.Function.from_function_arn(stack, "Fn", FN_ARN)
    return GatekeeperAuthorizer(
        stack, "Gk", function=fn, results_cache_ttl=Duration.seconds(ttl), **kwargs
    )


def _synth(ttl: int, *, token: bool = False, websocket: bool = False, **kwargs: Any) -> Template:
    """A stack with one REST API (REQUEST, optionally TOKEN), one HTTP API, maybe a WebSocket."""
    stack = Stack(App(), "S")
    gk = _gatekeeper(stack, ttl, **kwargs)
    api = apigw.RestApi(stack, "Rest")
    orders = api.root.add_resource("orders")
    orders.add_method("GET", apigw.MockIntegration(), authorizer=gk.request_authorizer())
    if token:
        orders.add_method("POST", apigw.MockIntegration(), authorizer=gk.token_authorizer())
    backend = lambda_.Function.from_function_arn(stack, "Backend", BACKEND_ARN)
    http = apigwv2.HttpApi(stack, "Http")
    http.add_routes(
        path="/orders",
        methods=[apigwv2.HttpMethod.GET],
        integration=apigwv2_int.HttpLambdaIntegration("I", backend),
        authorizer=gk.http_authorizer(),
    )
    if websocket:
        apigwv2.WebSocketApi(
            stack,
            "Ws",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=apigwv2_int.WebSocketLambdaIntegration("C", backend),
                authorizer=gk.websocket_authorizer(),
            ),
        )
    return Template.from_stack(stack)


def _rest(template: Template) -> dict[str, dict[str, Any]]:
    found = template.find_resources("AWS::ApiGateway::Authorizer")
    return {r["Properties"]["Type"]: r["Properties"] for r in found.values()}


def _v2(template: Template) -> dict[str, dict[str, Any]]:
    found = template.find_resources("AWS::ApiGatewayV2::Authorizer")
    return {r["Properties"]["Name"]: r["Properties"] for r in found.values()}


# --- TTL 0: nothing mandatory, every request reaches the authorizer ---------------------------


def test_ttl_zero_sets_no_mandatory_identity_source() -> None:
    template = _synth(0, token=True, websocket=True)
    rest = _rest(template)
    assert rest["REQUEST"]["AuthorizerResultTtlInSeconds"] == 0
    # no source: x-api-key callers and requests without credentials reach the authorizer
    assert "IdentitySource" not in rest["REQUEST"]
    assert rest["TOKEN"]["IdentitySource"] == "method.request.header.Authorization"
    assert rest["TOKEN"]["AuthorizerResultTtlInSeconds"] == 0
    v2 = _v2(template)
    http = v2["Gk-http"]
    assert http["AuthorizerResultTtlInSeconds"] == 0
    assert http["EnableSimpleResponses"] is True
    assert "IdentitySource" not in http
    ws = v2["Gk-websocket"]
    assert "IdentitySource" not in ws
    assert "AuthorizerResultTtlInSeconds" not in ws  # WebSocket answers are never cached


# --- TTL > 0: the cache key holds everything the answer depends on ----------------------------


def test_rest_request_with_ttl_keys_on_credential_and_tenant_header() -> None:
    rest = _rest(_synth(300))
    assert rest["REQUEST"]["AuthorizerResultTtlInSeconds"] == 300
    assert rest["REQUEST"]["IdentitySource"] == REST_KEYED


def test_http_api_with_ttl_keys_on_credential_tenant_method_and_path() -> None:
    http = _v2(_synth(300))["Gk-http"]
    assert http["AuthorizerResultTtlInSeconds"] == 300
    assert http["EnableSimpleResponses"] is True  # a yes/no, exact only per method + path
    assert http["IdentitySource"] == HTTP_KEYED


def test_custom_tenant_header_is_the_one_in_the_key() -> None:
    template = _synth(60, tenant_header="X-Org")
    assert _rest(template)["REQUEST"]["IdentitySource"] == (
        "method.request.header.Authorization,method.request.header.X-Org"
    )
    assert "$request.header.X-Org" in _v2(template)["Gk-http"]["IdentitySource"]


def test_tenant_header_can_be_left_out_of_the_key_explicitly() -> None:
    template = _synth(60, tenant_header_in_cache_key=False)
    assert _rest(template)["REQUEST"]["IdentitySource"] == "method.request.header.Authorization"
    assert _v2(template)["Gk-http"]["IdentitySource"] == [
        "$request.header.Authorization",
        "$context.httpMethod",
        "$context.path",
    ]


def test_without_tenant_header_the_key_is_the_credential_and_token_is_allowed() -> None:
    template = _synth(60, token=True, tenant_header=None)
    rest = _rest(template)
    assert rest["REQUEST"]["IdentitySource"] == "method.request.header.Authorization"
    assert rest["TOKEN"]["IdentitySource"] == "method.request.header.Authorization"
    assert rest["TOKEN"]["AuthorizerResultTtlInSeconds"] == 60


def test_tenant_header_in_key_needs_a_tenant_header() -> None:
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match="tenant_header"):
        _gatekeeper(stack, 60, tenant_header=None, tenant_header_in_cache_key=True)


# --- refusals ---------------------------------------------------------------------------------


def test_token_authorizer_with_ttl_and_tenant_header_is_refused_clearly() -> None:
    stack = Stack(App(), "S")
    gk = _gatekeeper(stack, 300)
    assert not gk.token_authorizer_allowed
    with pytest.raises(UnsafeCachingError) as info:
        gk.token_authorizer()
    message = str(info.value)
    assert "TOKEN" in message
    assert "'x-tenant-id'" in message
    assert "request_authorizer()" in message  # says what to do instead
    assert isinstance(info.value, ValueError)


def test_token_authorizer_with_ttl_zero_is_allowed() -> None:
    stack = Stack(App(), "S")
    assert _gatekeeper(stack, 0).token_authorizer_allowed


def test_websocket_identity_sources_are_configurable() -> None:
    template = _synth(
        0, websocket=True, websocket_identity_sources=["route.request.querystring.token"]
    )
    assert _v2(template)["Gk-websocket"]["IdentitySource"] == ["route.request.querystring.token"]


# --- the suite's stack ------------------------------------------------------------------------


def _authorizer_env(synth: Synth) -> dict[str, Any]:
    (fn,) = [
        r["Properties"]
        for k, r in synth.of_type("AWS::Lambda::Function").items()
        if k.startswith("Authorizer") and r["Properties"].get("Handler") == "handler.lambda_handler"
    ]
    return fn["Environment"]["Variables"]  # type: ignore[no-any-return]


def test_stack_function_and_cache_key_agree(synth: Synth, synth_variant: Synth) -> None:
    """The header in the cache key is the one the function checks; responses are simple."""
    for s in (synth, synth_variant):
        env = _authorizer_env(s)
        assert env["GATEKEEPER_TENANT_HEADER"] == "x-tenant-id"
        assert env["GATEKEEPER_HTTP_API_RESPONSE"] == "simple"


def test_stack_with_caching_uses_request_authorizers_only(synth_variant: Synth) -> None:
    authorizers = {
        k: r["Properties"] for k, r in synth_variant.of_type("AWS::ApiGateway::Authorizer").items()
    }
    assert [p["Type"] for p in authorizers.values()] == ["REQUEST"]
    ((request_id, request),) = authorizers.items()
    assert request["AuthorizerResultTtlInSeconds"] == 300
    assert request["IdentitySource"] == REST_KEYED
    custom = [
        m["Properties"]
        for m in synth_variant.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["AuthorizationType"] == "CUSTOM"
    ]
    assert len(custom) == 6
    assert all(m["AuthorizerId"] == {"Ref": request_id} for m in custom)
    (http,) = synth_variant.of_type("AWS::ApiGatewayV2::Authorizer").values()
    assert http["Properties"]["IdentitySource"] == HTTP_KEYED
    assert http["Properties"]["AuthorizerResultTtlInSeconds"] == 300


def test_readme_table_names_the_identity_sources_the_construct_sets() -> None:
    from gatekeeper_cdk.authorizer_construct import http_identity_sources
    from tests.infra.conftest import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Caching, and why the policy covers every route", 1)[1]
    section = section.split("\n## ", 1)[0]
    for source in http_identity_sources(300, None):
        name = source.removeprefix("$request.header.")
        assert f"`{name}`" in section or f"`{source}`" in section, source
    assert "UnsafeCachingError" in section


@pytest.mark.parametrize("ttl", [0, 300])
def test_construct_output_passes_cfn_lint(ttl: int, tmp_path: Path) -> None:
    """Omitted identity sources and the WebSocket authorizer are valid CloudFormation."""
    template = _synth(ttl, token=ttl == 0, websocket=True).to_json()
    path = tmp_path / "construct.template.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    result = subprocess.run(
        [CFN_LINT, "--format", "parseable", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
