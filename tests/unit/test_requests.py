"""The request model: which request is decided on, and which ARN a policy must name, for every
event shape API Gateway sends (REST TOKEN/REQUEST, HTTP API 1.0/2.0 incl. ``$default`` routes,
WebSocket ``$connect``, the console's test form); canonical paths only."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gatekeeper.canonical_path import NON_CANONICAL_GLOBS, canonical_path
from gatekeeper.errors import MalformedEvent, NonCanonicalPath, NotAnAuthorizerEvent
from gatekeeper.iam_simulator import iam_evaluate
from gatekeeper.requests import EventKind, EventShape, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
BASE = "arn:aws:execute-api:us-east-1:123456789012:f6g7h8i9j0"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


# --- the shapes, from the sample events in events/ ------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kind", "shape", "method", "path"),
    [
        ("rest_token.json", EventKind.REST_TOKEN, EventShape.REQUEST, "GET", "/orders/o-1001"),
        ("rest_request.json", EventKind.REST_REQUEST, EventShape.REQUEST, "POST", "/orders"),
        ("rest_request_proxy.json", EventKind.REST_REQUEST, EventShape.REQUEST, "GET",
         "/orders/o-1001/invoice"),
        ("http_api_v2.json", EventKind.HTTP_V2, EventShape.REQUEST, "GET", "/orders/o-1001"),
        ("http_api_v2_default_route.json", EventKind.HTTP_V2, EventShape.DEFAULT_ROUTE, "GET",
         "/orders/o-1001"),
        ("http_api_v1.json", EventKind.HTTP_V1, EventShape.REQUEST, "GET", "/orders"),
        ("rest_token_console_test.json", EventKind.REST_TOKEN, EventShape.TEST_INVOKE, "GET",
         "/"),
        ("websocket_connect.json", EventKind.WEBSOCKET, EventShape.CONNECT, "GET", "/$connect"),
    ],
)  # fmt: skip
def test_sample_events(
    name: str, kind: EventKind, shape: EventShape, method: str, path: str
) -> None:
    request = parse_event(load(name))
    assert (request.kind, request.shape, request.method, request.path) == (
        kind,
        shape,
        method,
        path,
    )
    assert request.credentials.present


def test_default_route_decides_on_the_concrete_request() -> None:
    event = load("http_api_v2_default_route.json")
    request = parse_event(event)
    assert request.arn.arn == event["routeArn"]  # what API Gateway evaluates a policy against
    assert request.arn.route == "$default" and request.route_key == "$default"


def test_default_route_of_a_named_stage_drops_the_stage_prefix() -> None:
    event = load("http_api_v2_default_route.json")
    event["routeArn"] = f"{BASE}/prod/$default"
    event["requestContext"]["stage"] = "prod"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/prod/orders/o-1001"
    assert parse_event(event).path == "/orders/o-1001"


def test_websocket_credentials_from_the_query_string_only_where_configured() -> None:
    event = load("websocket_connect.json")
    assert "authorization" not in {k.lower() for k in event["headers"]}
    assert parse_event(event).credentials.bearer is not None
    assert not parse_event(event, query_token_parameter=None).credentials.present
    assert not parse_event(event, query_token_parameter="other").credentials.present


def test_query_string_token_is_never_read_outside_websocket_connect() -> None:
    event = load("rest_request.json")
    del event["headers"]["Authorization"], event["multiValueHeaders"]["Authorization"]
    event["queryStringParameters"] = {"token": "eyJ.a.b"}
    assert not parse_event(event).credentials.present


def test_connect_event_must_name_the_connect_route() -> None:
    event = load("websocket_connect.json")
    event["methodArn"] = f"{BASE}/prod/GET/chat"
    with pytest.raises(MalformedEvent):
        parse_event(event)


@pytest.mark.parametrize(
    ("field", "value"),
    [("httpMethod", "DELETE"), ("path", "/admin/users")],
)
def test_rest_request_must_agree_with_its_method_arn(field: str, value: str) -> None:
    event = load("rest_request.json")
    event[field] = value
    with pytest.raises(MalformedEvent, match="differs"):
        parse_event(event)


def test_a_base_path_prefix_is_not_a_disagreement() -> None:
    event = load("rest_request.json")
    event["path"] = "/v1/orders"  # a custom domain's base path mapping
    assert parse_event(event).path == "/orders"


def test_http_v2_must_agree_with_its_route_arn() -> None:
    event = load("http_api_v2.json")
    event["rawPath"] = "/admin/users"
    with pytest.raises(MalformedEvent, match="differs"):
        parse_event(event)


def test_console_test_form_with_a_wildcard_verb() -> None:
    event = load("rest_token_console_test.json")
    event["methodArn"] = f"{BASE}/prod/*/orders"
    request = parse_event(event)
    assert (request.shape, request.method, request.path) == (EventShape.TEST_INVOKE, "*", "/orders")


@pytest.mark.parametrize(
    "event",
    [
        {"Records": [{"eventSource": "aws:sqs"}]},
        {"resource": "/{proxy+}", "httpMethod": "GET", "path": "/x", "requestContext": {}},
        {"version": "2.0", "routeKey": "$default", "rawPath": "/x", "requestContext": {}},
        {"awslogs": {"data": "H4sI"}},
    ],
)
def test_other_lambda_events_are_not_authorizer_events(event: dict[str, Any]) -> None:
    with pytest.raises(NotAnAuthorizerEvent):
        parse_event(event)


# --- canonical paths -----------------------------------------------------------------------------
CANONICAL = [
    "/",
    "/orders",
    "/orders/",
    "/orders/o-1001/invoice",
    "/users/ann%40example.com",
    "/files/report%20final.pdf",
    "/files/caf%C3%A9",
    "/files/café",
    "/$connect",
    "/a/b;v=1",
]
NON_CANONICAL = [
    "orders",
    "//orders",
    "/orders//1",
    "/orders/.",
    "/orders/./1",
    "/orders/../admin/users",
    "/orders/..",
    "/orders/..;/admin",
    "/orders/.;x/1",
    "/files/private%2Fx",
    "/files/private%2fx",
    "/files/private%5Cx",
    "/files\\private",
    "/files/%2e%2e/admin",
    "/files/%2E%2E/admin",
    "/files/%252F",
    "/%61dmin/users",
    "/files/caf%c3%a9",
    "/files/a%00b",
    "/files/a%",
    "/files/a%zz",
    "/files/a b",
    "/files/a?b",
    "/files/a#b",
    "/ａdmin",  # noqa: RUF001 - fullwidth: NFKC turns it into "admin"
    "/files/a\u200bb",  # zero-width space
]


@pytest.mark.parametrize("path", CANONICAL)
def test_canonical_paths_pass_unchanged(path: str) -> None:
    assert canonical_path(path) == path


@pytest.mark.parametrize("path", NON_CANONICAL)
def test_non_canonical_paths_are_refused(path: str) -> None:
    with pytest.raises(NonCanonicalPath):
        canonical_path(path)


@pytest.mark.parametrize(
    "path", ["/orders/../admin/users", "/files/private%2Fx", "/files//x", "/files/%2e%2e/x"]
)
def test_non_canonical_request_events_are_refused(path: str) -> None:
    for name, field in (
        ("http_api_v2_default_route.json", "rawPath"),
        ("rest_request.json", "path"),
    ):
        event = copy.deepcopy(load(name))
        event[field] = path
        with pytest.raises(NonCanonicalPath):
            parse_event(event)


# Paths a cached Allow must never cover: the traversal and separator forms (escaped letters and
# lower-case escapes are refused by the authorizer but cannot be listed as IAM globs).
CACHE_DENIED = [
    "/orders/../admin/users",
    "/orders/..",
    "/orders/./1",
    "/orders/.",
    "/orders/..;/admin",
    "/orders//1",
    "/files/private%2Fx",
    "/files/private%2fx",
    "/files/private%5Cx",
    "/files/private%5cx",
    "/files\\private",
    "/files/%2e%2e/admin",
    "/files/%2E%2E/admin",
    "/files/%252F",
]


@pytest.mark.parametrize("path", CACHE_DENIED)
@pytest.mark.parametrize("crosses", [True])
def test_the_non_canonical_denies_cover_every_traversal_form(path: str, crosses: bool) -> None:
    """Under IAM's documented glob rule (``*`` crosses ``/``), at any depth and for any verb."""
    denies = [f"{BASE}/prod/{glob}" for glob in NON_CANONICAL_GLOBS]
    doc = {
        "Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": [f"{BASE}/prod/*"]},
            {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": denies},
        ]
    }
    for verb in ("GET", "DELETE"):
        for prefix in ("", "/deep/er"):
            arn = f"{BASE}/prod/{verb}{prefix}{path}"
            assert iam_evaluate(doc, arn, star_crosses_slash=crosses) == "deny", arn
    for path_ok in CANONICAL:
        arn = f"{BASE}/prod/GET{path_ok}"
        assert iam_evaluate(doc, arn, star_crosses_slash=crosses) == "allow", arn
