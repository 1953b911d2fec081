"""The API Gateway model (gatekeeper.testing.gateway), and issue 11's caching property with it.

Unit-level tests drive the model with a stub authorizer and check the events it builds against
Powertools' own parser models and data classes (artefacts we did not write). The property tests
play every catalogued route for every principal of examples/access.yaml through the real handler
on four API shapes, with the authorizer cache on and off, forwards and backwards, and require
that caching never changes what a client sees, and that every shape decides like a fully
catalogued, uncached REST API.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerTokenEvent,
    parse_api_gateway_arn,
)
from aws_lambda_powertools.utilities.parser.models import (
    ApiGatewayAuthorizerRequest,
    ApiGatewayAuthorizerRequestV2,
    ApiGatewayAuthorizerToken,
    APIGatewayWebSocketConnectEventRequestContext,
)

from gatekeeper.clock import Clock, FakeClock
from gatekeeper.rbac.model import ApiRoutes
from gatekeeper.testing.events import HTTP_API, REST_API
from gatekeeper.testing.gateway import (
    ClientRequest,
    DeployedApi,
    GatewayAnswer,
    GatewayModel,
    Invoke,
    ModelError,
    handler_invoke,
    load_authorizer_handler,
    select_route,
)
from gatekeeper.testing.sample_access import ROUTES
from tests.conftest import World, make_world

ARN = "arn:aws:execute-api:us-east-1:123456789012"


# --- a stub authorizer ---------------------------------------------------------------------------
def policy(effect: str, *resources: str, principal: str = "user", **context: Any) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": effect, "Action": "execute-api:Invoke", "Resource": list(resources)}
            ],
        },
        "context": context,
    }


class Stub:
    """Records every event; answers with ``answer(event)`` (a dict, or raises)."""

    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.answer = answer
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return self.answer(event)


def allow_all(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("version") == "2.0":
        return {"isAuthorized": True, "context": {"who": "stub"}}
    return policy("Allow", f"{ARN}:*", who="stub")


REST = DeployedApi(
    api_type="rest",
    routes=(
        "GET /",
        "GET /orders",
        "GET /orders/{id}",
        "GET /orders/export",
        "ANY /orders/{id}/items",
        "DELETE /orders/{id}/items",
        "ANY /{proxy+}",
        "GET /files/{proxy+}",
    ),
    identity_sources=("method.request.header.Authorization",),
)
HTTP = DeployedApi(
    api_type="http",
    api_id="h77pap1xyz",
    stage="$default",
    routes=(
        "GET /orders/{id}",
        "GET /orders/export",
        "ANY /orders/{id}",
        "GET /files/{proxy+}",
        "ANY /{proxy+}",
        "$default",
    ),
    identity_sources=("$request.header.Authorization",),
)
AUTH = {"Authorization": "Bearer t"}


# --- route selection -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/", "GET /"),
        ("GET", "/orders", "GET /orders"),
        ("GET", "/orders/export", "GET /orders/export"),  # literal beats {id}
        ("GET", "/orders/o-1", "GET /orders/{id}"),  # {id} beats {proxy+}
        ("POST", "/orders/o-1", None),  # the resource is chosen first; it has no POST
        ("PATCH", "/orders/o-1/items", "ANY /orders/{id}/items"),
        ("DELETE", "/orders/o-1/items", "DELETE /orders/{id}/items"),  # own verb beats ANY
        ("GET", "/files/a/b/c", "GET /files/{proxy+}"),
        ("POST", "/files/a", None),
        ("DELETE", "/anything/at/all", "ANY /{proxy+}"),
        ("POST", "/", None),  # {proxy+} needs at least one segment
    ],
)
def test_rest_route_selection(method: str, path: str, route: str | None) -> None:
    selected = select_route(REST, method, path)
    assert (selected.key if selected else None) == route


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/orders/export", "GET /orders/export"),
        ("GET", "/orders/o-1", "GET /orders/{id}"),  # own verb beats ANY on the same path
        ("PUT", "/orders/o-1", "ANY /orders/{id}"),  # a full match beats a greedy one
        ("GET", "/files/a/b", "GET /files/{proxy+}"),  # the more specific greedy route
        ("POST", "/files/a/b", "ANY /{proxy+}"),
        ("GET", "/", "$default"),  # no route matches the root: the catch-all
    ],
)
def test_http_route_selection(method: str, path: str, route: str) -> None:
    selected = select_route(HTTP, method, path)
    assert selected is not None and selected.key == route


def test_no_route_is_answered_by_the_gateway_without_invoking() -> None:
    rest_stub, http_stub = Stub(allow_all), Stub(allow_all)
    rest = GatewayModel(replace(REST, routes=("GET /orders",)), rest_stub)
    http = GatewayModel(replace(HTTP, routes=("GET /orders",)), http_stub)
    assert rest.send(ClientRequest("GET", "/nope", AUTH)) == GatewayAnswer(
        403, "no_route", "gateway"
    )  # REST: {"message": "Missing Authentication Token"}
    assert http.send(ClientRequest("GET", "/nope", AUTH)) == GatewayAnswer(
        404, "no_route", "gateway"
    )
    assert rest_stub.events == http_stub.events == []


# --- event shapes (checked with Powertools' models, not ours) -------------------------------------
def test_rest_token_event() -> None:
    api = DeployedApi(
        api_type="rest",
        routes=("ANY /{proxy+}",),
        authorizer_type="TOKEN",
        identity_sources=("method.request.header.Authorization",),
    )
    stub = Stub(allow_all)
    answer = GatewayModel(api, stub).send(ClientRequest("DELETE", "/orders/o-1", AUTH))
    assert answer.status == 200 and answer.invoked
    [event] = stub.events
    ApiGatewayAuthorizerToken.model_validate(event)
    assert event == {
        "type": "TOKEN",
        "authorizationToken": "Bearer t",
        "methodArn": f"{ARN}:a1b2c3d4e5/prod/DELETE/orders/o-1",
    }
    arn = APIGatewayAuthorizerTokenEvent(event).parsed_arn
    assert (arn.stage, arn.http_method, arn.resource) == ("prod", "DELETE", "orders/o-1")


def test_rest_request_event_on_a_proxy_resource() -> None:
    stub = Stub(allow_all)
    request = ClientRequest("PATCH", "/a/b", {**AUTH, "X-Tenant-Id": "acme"}, {"token": "q"})
    GatewayModel(REST, stub).send(request)
    [event] = stub.events
    parsed = ApiGatewayAuthorizerRequest.model_validate(event)
    assert parsed.methodArn == f"{ARN}:a1b2c3d4e5/prod/PATCH/a/b"
    assert (parsed.resource, parsed.path, parsed.httpMethod) == ("/{proxy+}", "/a/b", "PATCH")
    assert parsed.requestContext.resourcePath == "/{proxy+}"
    assert parsed.requestContext.httpMethod == "PATCH"
    assert parsed.requestContext.path == "/prod/a/b"
    assert parsed.requestContext.stage == "prod"
    assert str(parsed.requestContext.identity.sourceIp).startswith("203.0.113.10")
    assert parsed.pathParameters == {"proxy": "a/b"}
    assert parsed.queryStringParameters == {"token": "q"}
    assert parsed.headers["X-Tenant-Id"] == "acme"  # REST keeps the client's spelling
    assert parsed.multiValueHeaders["Authorization"] == ["Bearer t"]
    data = APIGatewayAuthorizerRequestEvent(event)
    assert data.headers.get("authorization") == "Bearer t"  # case-insensitive
    assert data.parsed_arn.resource == "a/b" and data.parsed_arn.http_method == "PATCH"


@pytest.mark.parametrize(
    ("route_path", "route_key", "arn_tail"),
    [
        ("/orders/o-1", "GET /orders/{id}", "$default/GET/orders/o-1"),
        ("/", "$default", "$default/$default"),
    ],
)
def test_http_v2_event(route_path: str, route_key: str, arn_tail: str) -> None:
    api = replace(
        HTTP,
        identity_sources=(
            "$request.header.Authorization",
            "$context.httpMethod",
            "$context.path",
            "$context.routeKey",
        ),
    )
    stub = Stub(allow_all)
    answer = GatewayModel(api, stub).send(
        ClientRequest("GET", route_path, {"Authorization": "Bearer t", "X-Tenant-Id": "acme"})
    )
    assert answer.status == 200 and answer.context == {"who": "stub"}
    [event] = stub.events
    parsed = ApiGatewayAuthorizerRequestV2.model_validate(event)
    assert parsed.routeArn == f"{ARN}:h77pap1xyz/{arn_tail}"
    assert parsed.routeKey == parsed.requestContext.routeKey == route_key
    assert parsed.rawPath == parsed.requestContext.http.path == route_path
    assert parsed.requestContext.http.method == "GET"
    assert parsed.requestContext.stage == "$default"
    assert parsed.identitySource == ["Bearer t", "GET", route_path, route_key]
    assert parsed.headers["x-tenant-id"] == "acme" and "X-Tenant-Id" not in parsed.headers
    data = APIGatewayAuthorizerEventV2(event)
    assert data.route_key == route_key and data.identity_source == parsed.identitySource


def test_http_v2_event_on_a_named_stage_has_the_stage_in_raw_path() -> None:
    stub = Stub(allow_all)
    GatewayModel(replace(HTTP, stage="prod"), stub).send(ClientRequest("GET", "/files/x", AUTH))
    parsed = ApiGatewayAuthorizerRequestV2.model_validate(stub.events[0])
    assert parsed.routeArn == f"{ARN}:h77pap1xyz/prod/GET/files/x"
    assert parsed.rawPath == "/prod/files/x" and parsed.pathParameters == {"proxy": "x"}


def test_http_v1_event() -> None:
    api = replace(HTTP, payload_version="1.0", response_type="iam")
    stub = Stub(allow_all)
    assert GatewayModel(api, stub).send(ClientRequest("GET", "/orders/o-1", AUTH)).status == 200
    parsed = ApiGatewayAuthorizerRequest.model_validate(stub.events[0])
    assert parsed.version == "1.0" and parsed.resource == "/orders/{id}"
    assert parsed.methodArn == f"{ARN}:h77pap1xyz/$default/GET/orders/o-1"
    assert stub.events[0]["identitySource"] == "Bearer t"


def test_websocket_connect_event() -> None:
    api = DeployedApi(
        api_type="websocket",
        routes=("$connect", "$default"),
        identity_sources=("route.request.querystring.token",),
        ttl_seconds=0,
    )
    stub = Stub(lambda _: policy("Allow", f"{ARN}:a1b2c3d4e5/prod/$connect"))
    answer = GatewayModel(api, stub).send(ClientRequest("GET", "/", {}, {"token": "abc"}))
    assert answer.status == 200 and answer.route == "$connect"
    [event] = stub.events
    assert event["methodArn"] == f"{ARN}:a1b2c3d4e5/prod/$connect"
    assert event["queryStringParameters"] == {"token": "abc"}
    context = APIGatewayWebSocketConnectEventRequestContext.model_validate(event["requestContext"])
    assert (context.route_key, context.event_type, context.stage) == ("$connect", "CONNECT", "prod")
    assert context.connection_id
    data = APIGatewayAuthorizerRequestEvent(event)
    arn = parse_api_gateway_arn(data.method_arn, is_websocket_authorizer=True)
    assert (arn.stage, arn.resource) == ("prod", "$connect")
    assert (
        GatewayModel(api, stub).send(ClientRequest("GET", "/", {"token": "abc"})).outcome
        == "missing_identity_source"
    )


# --- identity sources, cache keying, TTL ---------------------------------------------------------
@pytest.mark.parametrize("ttl", [0, 300])
@pytest.mark.parametrize(
    ("api", "request_"),
    [
        (REST, ClientRequest("GET", "/orders")),
        (REST, ClientRequest("GET", "/orders", {"Authorization": ""})),
        (HTTP, ClientRequest("GET", "/orders/1", {"x-api-key": "gk_x"})),
        (
            replace(HTTP, identity_sources=("$request.querystring.token",)),
            ClientRequest("GET", "/orders/1", AUTH, {"token": ""}),
        ),
        (
            replace(REST, authorizer_type="TOKEN", validation_regex=r"Bearer [a-z]+"),
            ClientRequest("GET", "/orders", {"Authorization": "Basic dXNlcg=="}),
        ),
    ],
)
def test_missing_or_empty_identity_source_is_401_without_invoking(
    api: DeployedApi, request_: ClientRequest, ttl: int
) -> None:
    stub = Stub(allow_all)
    answer = GatewayModel(replace(api, ttl_seconds=ttl), stub).send(request_)
    assert (answer.status, answer.outcome, answer.invoked) == (
        401,
        "missing_identity_source",
        False,
    )
    assert stub.events == []


def test_without_identity_sources_and_without_a_cache_every_request_is_invoked() -> None:
    stub = Stub(allow_all)
    model = GatewayModel(replace(HTTP, identity_sources=(), ttl_seconds=0), stub)
    assert [a.status for a in model.play([ClientRequest("GET", "/orders/1")] * 2)] == [200, 200]
    assert len(stub.events) == 2 and stub.events[0]["identitySource"] is None


def test_cache_key_is_the_tuple_of_identity_source_values() -> None:
    api = replace(
        REST,
        identity_sources=("method.request.header.Authorization", "method.request.header.x-tenant"),
    )
    stub = Stub(allow_all)
    model = GatewayModel(api, stub)
    answers = model.play(
        [
            ClientRequest("GET", "/orders", {**AUTH, "x-tenant": "acme"}),
            ClientRequest("GET", "/orders/1", {**AUTH, "X-Tenant": "acme"}),  # same key
            ClientRequest("GET", "/orders", {**AUTH, "x-tenant": "globex"}),  # new key
            ClientRequest("GET", "/orders", {**AUTH, "x-tenant": "acme", "x-other": "1"}),
        ]
    )
    assert [a.answered_by for a in answers] == ["authorizer", "cache", "authorizer", "cache"]
    assert model.invocations == 2
    model.flush()
    assert model.send(ClientRequest("GET", "/orders", {**AUTH, "x-tenant": "acme"})).invoked


def test_cache_entries_live_ttl_seconds_on_the_injected_clock() -> None:
    clock = FakeClock()
    stub = Stub(allow_all)
    model = GatewayModel(replace(REST, ttl_seconds=300), stub, clock=clock)
    request = ClientRequest("GET", "/orders", AUTH)
    assert model.send(request).invoked
    clock.advance(299.9)
    assert model.send(request).answered_by == "cache"
    clock.advance(0.1)
    assert model.send(request).invoked
    assert GatewayModel(replace(REST, ttl_seconds=0), stub).play([request] * 2)[1].invoked


def test_a_cached_policy_is_judged_against_the_next_request() -> None:
    stub = Stub(
        lambda _: policy(
            "Allow", f"{ARN}:a1b2c3d4e5/prod/GET/orders", f"{ARN}:a1b2c3d4e5/prod/GET/orders/*"
        )
    )
    model = GatewayModel(REST, stub)
    answers = model.play(
        [
            ClientRequest("GET", "/orders/1", AUTH),
            ClientRequest("DELETE", "/orders/1/items", AUTH),
            ClientRequest("GET", "/orders", AUTH),
            ClientRequest("GET", "/", AUTH),
        ]
    )
    assert [(a.status, a.outcome, a.answered_by) for a in answers] == [
        (200, "allow", "authorizer"),
        (403, "implicit_deny", "cache"),
        (200, "allow", "cache"),
        (403, "implicit_deny", "cache"),
    ]
    assert answers[2].principal_id == "user" and answers[2].event is not None


def test_an_explicit_deny_is_cached_and_wins() -> None:
    stub = Stub(
        lambda _: {
            "principalId": "user",
            "policyDocument": {
                "Statement": [
                    {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{ARN}:*"},
                    {
                        "Effect": "Deny",
                        "Action": "execute-api:Invoke",
                        "Resource": f"{ARN}:a1b2c3d4e5/prod/DELETE/*",
                    },
                ]
            },
        }
    )
    answers = GatewayModel(REST, stub).play(
        [ClientRequest("DELETE", "/orders/1/items", AUTH), ClientRequest("GET", "/orders", AUTH)]
    )
    assert [(a.status, a.outcome) for a in answers] == [(403, "deny"), (200, "allow")]


def test_a_cached_simple_response_is_reused_as_is() -> None:
    stub = Stub(lambda event: {"isAuthorized": event["rawPath"] == "/orders/1"})
    answers = GatewayModel(HTTP, stub).play(
        [ClientRequest("GET", "/orders/1", AUTH), ClientRequest("DELETE", "/anything", AUTH)]
    )
    assert [(a.status, a.answered_by) for a in answers] == [(200, "authorizer"), (200, "cache")]


def test_iam_readings_that_disagree_are_a_model_error() -> None:
    stub = Stub(lambda _: policy("Allow", f"{ARN}:a1b2c3d4e5/prod/GET/*/items"))
    with pytest.raises(ModelError, match="disagree"):
        GatewayModel(REST, stub).send(ClientRequest("GET", "/orders/1/items", AUTH))


def test_unauthorized_is_401_and_not_cached() -> None:
    def refuse(_: dict[str, Any]) -> dict[str, Any]:
        raise Exception("Unauthorized")  # the exact error a Lambda authorizer raises

    stub = Stub(refuse)
    answers = GatewayModel(REST, stub).play([ClientRequest("GET", "/orders", AUTH)] * 2)
    assert [(a.status, a.outcome, a.invoked) for a in answers] == [(401, "unauthorized", True)] * 2


@pytest.mark.parametrize(
    "answer",
    [
        {"isAuthorized": True},  # a simple response where a policy is expected
        {"principalId": "u"},
        {"policyDocument": {"Statement": []}},
        {**policy("Allow", f"{ARN}:*"), "context": {"roles": ["a", "b"]}},
        {"principalId": "u", "policyDocument": {"Statement": "nope"}},
        "not an object",
    ],
)
def test_malformed_answers_are_500_and_not_cached(answer: Any) -> None:
    stub = Stub(lambda _: answer)
    answers = GatewayModel(REST, stub).play([ClientRequest("GET", "/orders", AUTH)] * 2)
    assert [(a.status, a.outcome, a.invoked) for a in answers] == [
        (500, "malformed_response", True)
    ] * 2


def test_other_exceptions_are_500() -> None:
    def crash(_: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("boom")

    answer = GatewayModel(HTTP, Stub(crash)).send(ClientRequest("GET", "/orders/1", AUTH))
    assert (answer.status, answer.outcome) == (500, "authorizer_error")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_type": "http", "authorizer_type": "TOKEN"},
        {"api_type": "rest", "identity_sources": ("$request.header.Authorization",)},
        {"api_type": "http", "identity_sources": ("method.request.header.Authorization",)},
        {"api_type": "rest", "ttl_seconds": 300},  # caching needs identity sources
        {"api_type": "rest", "ttl_seconds": 3601, "identity_sources": ("context.httpMethod",)},
        {"api_type": "websocket", "routes": ("$connect",), "ttl_seconds": 300},
        {"api_type": "http", "payload_version": "1.0", "ttl_seconds": 0},  # simple needs 2.0
        {"api_type": "rest", "routes": ("GET orders",), "ttl_seconds": 0},
        {"api_type": "rest", "routes": ("ANY /{proxy+}/x",), "ttl_seconds": 0},
    ],
)
def test_impossible_deployments_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        DeployedApi(**{"routes": ("GET /",), **kwargs})


# --- through the real handler --------------------------------------------------------------------
PROXY_REST_API = "pr0xyr35t1"
DEFAULT_HTTP_API = "d3fau1th77"
REFERENCE_API = "r3f3r3nc31"
EXTRA_ROUTES = (
    "GET /orders-export",
    "GET /admin/users/{id}",
    "PATCH /orders/{id}",
    "DELETE /orders/{id}/invoice",
)
# The identity sources GatekeeperAuthorizer (infra/cdk) derives for a TTL > 0 with the default
# tenant header (none at TTL 0); test_shapes_key_the_cache_as_the_cdk_construct_does pins them.
REST_IDENTITY = ("method.request.header.Authorization", "method.request.header.x-tenant-id")
HTTP_IDENTITY = (
    "$request.header.Authorization",
    "$request.header.x-tenant-id",
    "$context.httpMethod",
    "$context.path",
)
TOKEN_IDENTITY = ("method.request.header.Authorization",)

SHAPES: dict[str, DeployedApi] = {
    "rest-catalogued": DeployedApi(
        api_type="rest", api_id=REST_API, routes=ROUTES, identity_sources=REST_IDENTITY
    ),
    "rest-proxy": DeployedApi(
        api_type="rest",
        api_id=PROXY_REST_API,
        routes=("GET /", "ANY /{proxy+}"),
        identity_sources=REST_IDENTITY,
    ),
    "http-catalogued": DeployedApi(
        api_type="http",
        api_id=HTTP_API,
        stage="$default",
        routes=ROUTES,
        identity_sources=HTTP_IDENTITY,
    ),
    "http-default": DeployedApi(
        api_type="http",
        api_id=DEFAULT_HTTP_API,
        stage="$default",
        routes=("$default",),
        identity_sources=HTTP_IDENTITY,
    ),
    # A TOKEN authorizer sees the token and the method ARN only (the construct allows caching
    # it only without a tenant header: the authorizer could not check one)
    "rest-token-proxy": DeployedApi(
        api_type="rest",
        api_id=PROXY_REST_API,
        routes=("GET /", "ANY /{proxy+}"),
        authorizer_type="TOKEN",
        identity_sources=TOKEN_IDENTITY,
    ),
}
REFERENCE = DeployedApi(
    api_type="rest",
    api_id=REFERENCE_API,
    routes=(*ROUTES, *EXTRA_ROUTES),
    identity_sources=REST_IDENTITY,
    ttl_seconds=0,
)
REQUESTS: tuple[tuple[str, str], ...] = (
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/orders"),
    ("POST", "/orders"),
    ("GET", "/orders/o-1"),
    ("PUT", "/orders/o-1"),
    ("DELETE", "/orders/o-1"),
    ("GET", "/orders/o-1/invoice"),
    ("GET", "/tenants/acme/reports"),
    ("POST", "/tenants/acme/reports"),
    ("GET", "/tenants/globex/reports"),
    ("POST", "/tenants/globex/reports"),
    ("GET", "/admin/users"),
    ("DELETE", "/admin/users/u-1"),
    # not in the catalogue: a proxy API routes them to the authorizer all the same
    ("GET", "/orders-export"),
    ("GET", "/admin/users/u-1"),
    ("PATCH", "/orders/o-1"),
    ("DELETE", "/orders/o-1/invoice"),
)


@dataclass(frozen=True)
class Persona:
    """A client: who (headers) from where; a ``tenant_spoof`` caller claims another tenant
    in the tenant header, which only a REQUEST authorizer sees."""

    name: str
    headers: dict[str, str]
    source_ip: str
    tenant_spoof: bool = False


def personas(world: World) -> list[Persona]:
    keys = world.keys
    acme = {"x-tenant-id": "acme"}
    clients = [
        ("corp:alice", {"Authorization": f"Bearer {world.token('alice')}", **acme}),
        (
            "corp:bob",
            {
                "Authorization": f"Bearer {world.token('bob', tenant='globex')}",
                "x-tenant-id": "globex",
            },
        ),
        (
            "jwt:platform-admins",
            {"Authorization": f"Bearer {world.token('carol', groups=['platform-admins'])}", **acme},
        ),
        (
            "jwt:scope-orders-read",
            {"Authorization": f"Bearer {world.token('dave', scope='orders:read')}", **acme},
        ),
        ("jwt:unassigned", {"Authorization": f"Bearer {world.token('mallory')}", **acme}),
        ("key:active", {"Authorization": keys.active, **acme}),
        ("key:revoked", {"Authorization": keys.revoked, **acme}),
        ("key:rotated_in_grace", {"Authorization": keys.rotated_in_grace, **acme}),
        ("key:rotated_expired", {"Authorization": keys.rotated_expired, **acme}),
        ("key:expired", {"Authorization": keys.expired, **acme}),
        ("key:active-in-x-api-key", {"x-api-key": keys.active, **acme}),
    ]
    found = [Persona(n, h, f"198.51.100.{i + 10}") for i, (n, h) in enumerate(clients)]
    spoof = {**clients[0][1], "x-tenant-id": "globex"}
    return [*found, Persona("corp:alice-claiming-globex", spoof, "198.51.100.99", True)]


@pytest.fixture
def invoke(world: World) -> Invoke:
    """The real handler file, with the seeded authorizer as its warm container's singleton."""
    world.store.put(
        ApiRoutes(api_id=PROXY_REST_API, stage="prod", routes=SHAPES["rest-proxy"].routes),
        ApiRoutes(api_id=REFERENCE_API, stage="prod", routes=REFERENCE.routes),
    )
    return handler_invoke(load_authorizer_handler(), authorizer=world.authorizer)


def test_through_the_real_handler(world: World, invoke: Invoke) -> None:
    model = GatewayModel(SHAPES["rest-catalogued"], invoke, clock=world.clock)
    alice = {"Authorization": f"Bearer {world.token('alice')}", "x-tenant-id": "acme"}
    answers = model.play(
        [
            ClientRequest("GET", "/orders/o-1", alice),
            ClientRequest("DELETE", "/orders/o-1", alice),
            ClientRequest("GET", "/orders/o-1", {**alice, "Authorization": "Bearer nonsense"}),
        ]
    )
    assert [(a.status, a.answered_by) for a in answers] == [
        (200, "authorizer"),
        (403, "cache"),
        (401, "authorizer"),
    ]
    assert answers[0].principal_id == "corp:alice"
    assert answers[1].context["principalId"] == "corp:alice"


def _requests(people: list[Persona], shape: DeployedApi) -> list[tuple[str, ClientRequest]]:
    return [
        (p.name, ClientRequest(method, path, p.headers, source_ip=p.source_ip))
        for p in people
        if shape.authorizer_type == "REQUEST" or not p.tenant_spoof
        for method, path in REQUESTS
    ]


Key = tuple[str, str, str]  # persona, method, path
Diff = tuple[Key, int, int]  # what, uncached status, cached status
Plays = list[tuple[str, ClientRequest]]


def _statuses(model: GatewayModel, plays: Plays) -> dict[Key, int]:
    return {(name, r.method, r.path): model.send(r).status for name, r in plays}


@dataclass
class Comparison:
    """Cached against uncached answers for one API shape; differences split by direction."""

    played: int = 0
    from_cache: int = 0
    uncached: dict[Key, int] = field(default_factory=dict)
    over: list[Diff] = field(default_factory=list)  # cached allows what uncached denies
    under: list[Diff] = field(default_factory=list)  # cached denies what uncached allows
    other: list[Diff] = field(default_factory=list)  # e.g. 401 against 403
    refused: list[Diff] = field(default_factory=list)  # 401: a mandatory identity source missing
    scopes: Counter[str] = field(default_factory=Counter)

    def summary(self, name: str) -> str:
        return (
            f"{name}: {self.played} cached requests ({self.from_cache} answered by the cache), "
            f"{len(self.uncached)} uncached; {len(self.over)} allowed where uncached denies, "
            f"{len(self.under)} denied where uncached allows, {len(self.other)} other, "
            f"{len(self.refused)} refused for a missing identity source; "
            f"policyScope of invoked answers {dict(self.scopes)}"
        )


def compare_caching(
    shape: DeployedApi,
    invoke: Invoke,
    plays: Plays,
    clock: Clock,
    *,
    uncached_sources: tuple[str, ...] | None = None,
) -> Comparison:
    """Play ``plays`` uncached (forwards and backwards: must agree), then with a 300 s cache twice
    (forwards then backwards in one cache, and backwards then forwards in a fresh one), and
    compare every cached answer with the uncached one for the same request.

    The uncached API keeps ``shape``'s identity sources unless ``uncached_sources`` is given
    (the construct sets none at TTL 0)."""
    uncached_api = replace(
        shape,
        ttl_seconds=0,
        identity_sources=shape.identity_sources if uncached_sources is None else uncached_sources,
    )
    result = Comparison(uncached=_statuses(GatewayModel(uncached_api, invoke, clock=clock), plays))
    backward = _statuses(GatewayModel(uncached_api, invoke, clock=clock), plays[::-1])
    assert result.uncached == backward, "the uncached decision depends on the order of requests"
    for order in (plays + plays[::-1], plays[::-1] + plays):
        model = GatewayModel(replace(shape, ttl_seconds=300), invoke, clock=clock)
        for name, request in order:
            key = (name, request.method, request.path)
            answer = model.send(request)
            result.played += 1
            result.from_cache += answer.answered_by == "cache"
            if answer.invoked:
                result.scopes[str(answer.context.get("policyScope", "-"))] += 1
            uncached = result.uncached[key]
            if answer.status == uncached:
                continue
            diff = (key, uncached, answer.status)
            if answer.outcome == "missing_identity_source":
                result.refused.append(diff)
            elif answer.status == 200:
                result.over.append(diff)
            elif uncached == 200:
                result.under.append(diff)
            else:
                result.other.append(diff)
    return result


def _describe(diffs: list[Diff]) -> str:
    return "\n".join(f"  {k}: uncached {u}, cached {c}" for k, u, c in diffs[:40])


@pytest.mark.parametrize("uncached", ["same-identity-sources", "construct-ttl-0"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_caching_never_changes_what_a_client_sees(
    world: World, invoke: Invoke, shape_name: str, uncached: str
) -> None:
    """Issue 11: with caching on, every route and principal answers as without it, both ways.

    ``same-identity-sources`` changes only the TTL. ``construct-ttl-0`` compares with what the
    construct deploys for a TTL of 0 (no identity sources, every request reaches the
    authorizer); there the one allowed difference is the documented price of caching: a request
    without a mandatory identity source (an ``x-api-key``-only caller) is refused with a 401 by
    API Gateway. A cached answer must still never turn a 403 into a 200 or a 200 into a 403.
    """
    shape = SHAPES[shape_name]
    plays = _requests(personas(world), shape)
    sources = () if uncached == "construct-ttl-0" and shape.authorizer_type == "REQUEST" else None
    result = compare_caching(shape, invoke, plays, world.clock, uncached_sources=sources)
    print("\n" + result.summary(f"{shape_name} vs {uncached}"))
    if sources is None:
        assert not result.refused, _describe(result.refused)
    else:
        assert {k[0] for k, _, _ in result.refused} <= {"key:active-in-x-api-key"}
    assert result.from_cache > 0, "the cache never answered: nothing was compared"
    assert set(result.uncached.values()) >= {200, 401, 403}, result.uncached
    assert not result.over, f"cached answers allow what is denied:\n{_describe(result.over)}"
    assert not result.under, f"cached answers deny what is allowed:\n{_describe(result.under)}"
    assert not result.other, f"cached answers differ:\n{_describe(result.other)}"


def test_the_caching_comparison_finds_differences_both_ways(world: World) -> None:
    """The property above can fail: a request-scope policy under-grants once cached, a wildcard
    Allow over-grants, and both are counted (on the proxy shape, stub authorizers)."""

    def request_scope(event: dict[str, Any]) -> dict[str, Any]:
        return policy("Allow", event["methodArn"])

    def wildcard_once(event: dict[str, Any]) -> dict[str, Any]:
        """Allows everything, but the request it answers only for GET."""
        arn = str(event["methodArn"])
        if "/GET/" in arn or arn.endswith("/GET/"):
            return policy("Allow", f"{ARN}:*")
        return policy("Deny", arn)

    shape = SHAPES["rest-proxy"]
    plays = _requests(personas(world)[:2], shape)
    under = compare_caching(shape, Stub(request_scope), plays, world.clock)
    assert under.under and not under.over and under.from_cache
    over = compare_caching(shape, Stub(wildcard_once), plays, world.clock)
    assert over.over


@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_every_api_shape_decides_like_the_catalogued_reference(
    world: World, invoke: Invoke, shape_name: str
) -> None:
    """Without a cache, every shape answers each request it routes to the authorizer as a REST
    API whose catalogue names every played route does (so a uniform 401 cannot pass)."""
    shape = SHAPES[shape_name]
    people = personas(world)
    reference = _statuses(
        GatewayModel(REFERENCE, invoke, clock=world.clock), _requests(people, shape)
    )
    model = GatewayModel(replace(shape, ttl_seconds=0), invoke, clock=world.clock)
    diffs: list[tuple[Key, int, int]] = []
    routed = Counter[str]()
    for name, request in _requests(people, shape):
        if select_route(shape, request.method, request.path) is None:
            routed["no route"] += 1
            continue
        answer = model.send(request)
        routed[answer.answered_by] += 1
        key = (name, request.method, request.path)
        if answer.status != reference[key]:
            scope = answer.context.get("policyScope") or answer.context.get("reason")
            diffs.append((key, reference[key], answer.status))
            print(f"  {key}: reference {reference[key]}, {shape_name} {answer.status} ({scope})")
    print(f"\n{shape_name}: {dict(routed)}; {len(diffs)} differ from the reference")
    assert set(reference.values()) >= {200, 401, 403}, reference
    assert not diffs, "decisions differ from the reference:\n" + "\n".join(
        f"  {k}: reference {r}, {shape_name} {s}" for k, r, s in diffs[:40]
    )


def test_a_tenant_header_outside_the_cache_key_crosses_tenants(
    world: World, invoke: Invoke
) -> None:
    """Why the construct keys the cache on the tenant header: keyed on Authorization + method +
    path only, alice's cached allow for GET /orders also answers her request claiming tenant
    globex, which the authorizer denies."""
    unkeyed = tuple(s for s in HTTP_IDENTITY if "x-tenant-id" not in s)
    shape = replace(SHAPES["http-catalogued"], ttl_seconds=300, identity_sources=unkeyed)
    alice = {"Authorization": f"Bearer {world.token('alice')}", "x-tenant-id": "acme"}
    spoof = {**alice, "x-tenant-id": "globex"}
    uncached = GatewayModel(replace(shape, ttl_seconds=0), invoke, clock=world.clock)
    assert uncached.send(ClientRequest("GET", "/orders", spoof)).status == 403
    cached = GatewayModel(shape, invoke, clock=world.clock)
    first, second = cached.play(
        [ClientRequest("GET", "/orders", alice), ClientRequest("GET", "/orders", spoof)]
    )
    assert (first.status, second.status, second.answered_by) == (200, 200, "cache")
    keyed = replace(shape, identity_sources=HTTP_IDENTITY)
    cached = GatewayModel(keyed, invoke, clock=world.clock)
    first, second = cached.play(
        [ClientRequest("GET", "/orders", alice), ClientRequest("GET", "/orders", spoof)]
    )
    assert (first.status, second.status, second.answered_by) == (200, 403, "authorizer")


def test_shapes_key_the_cache_as_the_cdk_construct_does() -> None:
    """The identity sources played above are the ones GatekeeperAuthorizer deploys."""
    pytest.importorskip("aws_cdk", reason="the cdk extra is not installed")
    cdk = str(Path(__file__).resolve().parents[2] / "infra" / "cdk")
    if cdk not in sys.path:
        sys.path.insert(0, cdk)
    from gatekeeper_cdk import authorizer_construct as construct

    assert construct.rest_request_identity_sources(300, "x-tenant-id") == list(REST_IDENTITY)
    assert construct.http_identity_sources(300, "x-tenant-id") == list(HTTP_IDENTITY)
    assert construct.rest_request_identity_sources(0, "x-tenant-id") == []
    assert construct.http_identity_sources(0, "x-tenant-id") == []
    assert TOKEN_IDENTITY[0] == construct.REST_TOKEN_SOURCE


# --- WebSocket $connect and non-canonical paths, through the real handler ------------------------
@pytest.mark.parametrize(
    ("source", "carry"),
    [
        ("route.request.header.Authorization", "header"),
        ("route.request.querystring.token", "query"),
    ],
)
def test_websocket_connect_through_the_real_handler(
    world: World, invoke: Invoke, source: str, carry: str
) -> None:
    """$connect is decided as the construct deploys it: never cached, a REQUEST authorizer with
    the credential in a header or in the ``token`` query parameter; the answer is a policy for
    the connect ARN, judged by the model like any other."""
    api = DeployedApi(
        api_type="websocket",
        api_id="w3bs0ck3t1",
        routes=("$connect", "$default"),
        identity_sources=(source,),
        ttl_seconds=0,
    )
    model = GatewayModel(api, invoke, clock=world.clock)

    def connect(credential: str) -> GatewayAnswer:
        if carry == "header":
            return model.send(ClientRequest("GET", "/", {"Authorization": credential}))
        return model.send(ClientRequest("GET", "/", {}, {"token": credential}))

    admin = connect(f"Bearer {world.token('carol', groups=['platform-admins'])}")
    assert (admin.status, admin.route, admin.principal_id) == (200, "$connect", "corp:carol")
    assert connect(f"Bearer {world.token('mallory')}").status == 403  # no role grants it
    assert connect("Bearer nonsense").status == 401
    assert connect(world.keys.revoked).status == 401
    missing = model.send(ClientRequest("GET", "/"))
    assert (missing.status, missing.invoked) == (401, False)


NON_CANONICAL = (
    ("GET", "/orders/../admin/users"),
    ("GET", "/orders/o-1/../../admin/users"),
    ("GET", "/orders/./o-1"),
    ("GET", "/orders//o-1"),
    ("DELETE", "/admin%2Fusers/u-1"),
    ("GET", "/orders/%2e%2e/admin/users"),
    ("GET", "/orders/o-1/invoice/.."),
    ("GET", "/orders/o-1%5C..%5Cadmin"),
)


@pytest.mark.parametrize("shape_name", ["rest-proxy", "http-default", "rest-token-proxy"])
def test_no_non_canonical_path_is_ever_allowed(
    world: World, invoke: Invoke, shape_name: str
) -> None:
    """Issue 11, 3: neither directly nor through a cached policy, for callers allowed a lot.

    Cached policies are judged under IAM's documented rule (``*`` matches across ``/``): the
    non-canonical Denies (``…/*/../*``) cover every depth there. Under the one-segment reading
    the project otherwise hedges against, a Deny per depth would not fit in a policy.
    """
    shape = SHAPES[shape_name]
    callers = [
        p for p in personas(world) if p.name in ("jwt:platform-admins", "corp:alice", "key:active")
    ]
    allowed: list[tuple[str, str, str, str, int]] = []
    for ttl in (0, 300):
        model = GatewayModel(
            replace(shape, ttl_seconds=ttl), invoke, clock=world.clock, documented_iam_only=True
        )
        for caller in callers:
            warm = model.send(ClientRequest("GET", "/orders", caller.headers))  # fills the cache
            assert warm.status == 200, (caller.name, warm)
            for method, path in NON_CANONICAL:
                answer = model.send(ClientRequest(method, path, caller.headers))
                if answer.status == 200:
                    allowed.append((caller.name, method, path, answer.answered_by, ttl))
    assert not allowed, "non-canonical paths allowed:\n" + "\n".join(map(str, allowed))


# --- HTTP API answering with IAM policies ---------------------------------------------------
def test_an_iam_policy_cannot_tell_default_route_requests_apart() -> None:
    """A $default route's routeArn is '…/STAGE/$default' for every request: a policy judged
    against it allows all of them or none (why the construct answers HTTP APIs simply)."""
    stub = Stub(lambda _: policy("Allow", f"{ARN}:h77pap1xyz/$default/GET/orders/*"))
    api = replace(HTTP, routes=("$default",), response_type="iam")
    answer = GatewayModel(api, stub).send(ClientRequest("GET", "/orders/1", AUTH))
    assert (answer.status, answer.outcome) == (403, "implicit_deny")
    assert stub.events[0]["routeArn"] == f"{ARN}:h77pap1xyz/$default/$default"


def test_caching_with_iam_answers_on_a_catalogued_http_api(
    dynamodb: Any, jwks_server: Any, signing_key: Any
) -> None:
    """With ``http_api_response=iam`` a cached policy is judged against each request's own
    routeArn, so the cache may be keyed like REST (credential + tenant header)."""
    world = make_world(dynamodb, jwks_server, signing_key, http_api_response="iam")
    invoke = handler_invoke(load_authorizer_handler(), authorizer=world.authorizer)
    shape = replace(
        SHAPES["http-catalogued"],
        response_type="iam",
        identity_sources=("$request.header.Authorization", "$request.header.x-tenant-id"),
    )
    result = compare_caching(shape, invoke, _requests(personas(world), shape), world.clock)
    print("\n" + result.summary("http-catalogued-iam"))
    assert result.from_cache > 0 and set(result.uncached.values()) >= {200, 401, 403}
    assert not (result.over or result.under or result.other), _describe(
        result.over + result.under + result.other
    )
