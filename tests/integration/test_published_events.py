"""AWS's published sample events through the real authorizer, and our events/ checked by Powertools.

Events we build ourselves can only show that the authorizer agrees with us. These come from
artefacts we did not write: the templates ``sam local generate-event`` renders (the aws-sam-cli
wheel on PyPI, see ``tests/published_events.py``) and Powertools for AWS Lambda's models of the
authorizer events. Each sample has one documented answer: 401 with its reason, Deny, or Allow;
never an exception, never a 500.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

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
)
from aws_lambda_powertools.utilities.parser.models.apigw_websocket import (
    APIGatewayWebSocketConnectEventRequestContext,
)

from gatekeeper.arn import ExecuteApiArn
from gatekeeper.iam_simulator import iam_evaluate
from gatekeeper.requests import parse_event
from gatekeeper.testing import LocalJwksServer
from gatekeeper.testing.lambda_context import LocalLambdaContext
from tests.conftest import TABLE, World, issuer_settings
from tests.integration.test_handler import audit_lines, load_handler
from tests.published_events import SamEvents

ROOT = Path(__file__).resolve().parents[2]


def test_samples_render_as_sam_generate_event_does(sam: SamEvents) -> None:
    """Defaults, base64 and md5 tags and dict tags, as ``sam local generate-event`` renders them
    (the SQS md5 is the one in AWS's documented SQS sample event)."""
    token = sam.render("apigateway", "authorizer")
    assert (
        token["methodArn"]
        == "arn:aws:execute-api:us-east-1:123456789012:example/prod/POST/{proxy+}"
    )
    [record] = sam.render("sqs", "receive-message")["Records"]
    assert record["md5OfBody"] == "7b270e59b47ff90a553787216d55d91d"
    proxy = sam.render("apigateway", "aws-proxy")
    assert proxy["queryStringParameters"] == {"foo": "bar"}
    assert proxy["body"] == "eyJ0ZXN0IjoiYm9keSJ9"  # base64 of {"test":"body"}


# --- the samples and their answers -------------------------------------------------------------
Build = Callable[[SamEvents, World], dict[str, Any]]


@dataclass(frozen=True)
class Expect:
    decision: Literal["allow", "deny", "unauthorized"]
    reasons: frozenset[str] = field(default_factory=frozenset)
    principal: str | None = None


def unauthorized(*reasons: str) -> Expect:
    return Expect("unauthorized", frozenset(reasons))


def sample(service: str, event: str, **values: str) -> Build:
    """A sample exactly as ``sam local generate-event`` renders it (defaults unless given)."""
    return lambda sam, _: sam.render(service, event, **values)


def token_sample(**values: str) -> Build:
    """SAM's TOKEN sample carrying a real JWT of corp:alice (orders-clerk in tenant acme)."""

    def build(sam: SamEvents, world: World) -> dict[str, Any]:
        event = sam.render("apigateway", "authorizer", **values)
        event["authorizationToken"] = world.token()
        return event

    return build


def request_sample(header: str, credential: Callable[[World], str], **values: str) -> Build:
    """SAM's REQUEST sample with one credential header added (as a client would send it)."""

    def build(sam: SamEvents, world: World) -> dict[str, Any]:
        event = sam.render("apigateway", "request-authorizer", **values)
        event["headers"][header] = credential(world)
        return event

    return build


def bearer(world: World) -> str:
    return f"Bearer {world.token()}"


ORDERS_GET = {"resource": "orders", "method": "GET"}
CASES: dict[str, tuple[Build, Expect]] = {
    # TOKEN: "incoming-client-token" is no credential, and "…/prod/POST/{proxy+}" is a template
    # path (braces are refused in ARNs); the ARN is refused first, either reason is a clean 401.
    "sam-token": (
        sample("apigateway", "authorizer"),
        unauthorized("malformed_event", "invalid_token"),
    ),
    "sam-token-jwt-post-orders": (
        token_sample(resource="orders"),
        Expect("allow", principal="corp:alice"),
    ),
    "sam-token-jwt-delete-order": (
        token_sample(resource="orders/o-1", method="DELETE"),
        Expect("deny", frozenset({"explicit_deny"}), "corp:alice"),
    ),
    # REQUEST: the sample's headers carry no credential.
    "sam-request": (
        sample("apigateway", "request-authorizer"),
        unauthorized("missing_credentials"),
    ),
    "sam-request-bearer-get-orders": (
        request_sample("Authorization", bearer, **ORDERS_GET),
        Expect("allow", principal="corp:alice"),
    ),
    "sam-request-bearer-delete-order": (
        request_sample("Authorization", bearer, resource="orders/o-1", method="DELETE"),
        Expect("deny", frozenset({"explicit_deny"}), "corp:alice"),
    ),
    # svc:billing's keys are orders-reader in tenant acme.
    "sam-request-api-key-get-orders": (
        request_sample("x-api-key", lambda w: w.keys.active, **ORDERS_GET),
        Expect("allow", principal="svc:billing"),
    ),
    "sam-request-api-key-post-orders": (
        request_sample("x-api-key", lambda w: w.keys.active, resource="orders", method="POST"),
        Expect("deny", frozenset({"no_matching_permission"}), "svc:billing"),
    ),
    "sam-request-revoked-api-key": (
        request_sample("x-api-key", lambda w: w.keys.revoked, **ORDERS_GET),
        unauthorized("api_key_revoked"),
    ),
    # Lambda proxy (integration) events and other services' events are not authorizer events.
    "sam-http-api-proxy": (
        sample("apigateway", "http-api-proxy"),
        unauthorized("not_an_authorizer_event"),
    ),
    "sam-aws-proxy": (sample("apigateway", "aws-proxy"), unauthorized("not_an_authorizer_event")),
    "sam-alb": (sample("alb", "request"), unauthorized("not_an_authorizer_event")),
    "sam-sqs": (sample("sqs", "receive-message"), unauthorized("not_an_authorizer_event")),
    "sam-s3-put": (sample("s3", "put"), unauthorized("not_an_authorizer_event")),
    "sam-cloudwatch-logs": (sample("cloudwatch", "logs"), unauthorized("not_an_authorizer_event")),
    "sam-scheduled-event": (
        sample("cloudwatch", "scheduled-event"),
        unauthorized("not_an_authorizer_event"),
    ),
    "sam-dynamodb-stream": (sample("dynamodb", "update"), unauthorized("not_an_authorizer_event")),
}


def cases() -> list[Any]:
    return [pytest.param(case_id, id=case_id) for case_id in CASES]


def request_arn(event: dict[str, Any]) -> str:
    arn = event.get("methodArn") or event.get("routeArn")
    assert isinstance(arn, str)
    return arn


def check(expect: Expect, event: dict[str, Any], decision: str, reason: str, response: Any) -> None:
    """The answer API Gateway acts on: 401 with its reason, or a policy judged on the ARN."""
    assert decision == expect.decision, reason
    if expect.reasons:
        assert reason in expect.reasons
    if decision == "unauthorized":
        assert response is None
        return
    assert response["principalId"] == expect.principal
    verdict = iam_evaluate(response["policyDocument"], request_arn(event))
    assert (verdict == "allow") == (decision == "allow"), verdict


@pytest.mark.parametrize("case_id", cases())
def test_published_sample_through_the_authorizer(
    sam: SamEvents, world: World, case_id: str
) -> None:
    build, expect = CASES[case_id]
    event = build(sam, world)
    result = world.authorizer.authorize(event)
    [audit] = world.audit.events
    assert audit is result.audit
    assert result.unauthorized == (expect.decision == "unauthorized")
    check(expect, event, audit.decision, audit.reason, result.response)


@pytest.fixture
def handler(
    world: World, jwks_server: LocalJwksServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[ModuleType, io.StringIO]:
    """functions/authorizer/handler.py configured by environment, as in test_handler.py, on
    the table and JWKS that ``world`` seeded."""
    monkeypatch.setenv("GATEKEEPER_CONFIG_TABLE", TABLE)
    monkeypatch.setenv("GATEKEEPER_ISSUERS", json.dumps(issuer_settings(jwks_server.uri)))
    module = load_handler()
    log = io.StringIO()
    module.logger.logger_handler.setStream(log)
    return module, log


def invoke(module: ModuleType, event: dict[str, Any]) -> dict[str, Any] | None:
    """A policy, or ``None`` for exactly ``Unauthorized`` (API Gateway's 401); else it raises."""
    try:
        response: dict[str, Any] = module.lambda_handler(event, LocalLambdaContext())
    except Exception as exc:
        if str(exc) != "Unauthorized":
            raise
        return None
    return response


@pytest.mark.parametrize("case_id", cases())
def test_published_sample_through_the_handler(
    sam: SamEvents, world: World, handler: tuple[ModuleType, io.StringIO], case_id: str
) -> None:
    module, log = handler
    build, expect = CASES[case_id]
    event = build(sam, world)
    response = invoke(module, event)
    [audit] = audit_lines(log)
    check(expect, event, audit["decision"], audit["reason"], response)


# --- our events/ files, read by Powertools' models and data classes ----------------------------
def authorizer_events() -> list[str]:
    """Every file in events/ that is an authorizer event (the audit-sink samples are not)."""
    names = []
    for path in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text())
        if isinstance(event, dict) and event.get("type") in ("TOKEN", "REQUEST"):
            names.append(path.name)
    return names


AUTHORIZER_EVENTS = authorizer_events()


def event_params() -> list[Any]:
    return [pytest.param(name, id=name) for name in AUTHORIZER_EVENTS]


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return event


def is_connect(event: dict[str, Any]) -> bool:
    return bool(event.get("requestContext", {}).get("eventType") == "CONNECT")


def test_our_authorizer_events_are_found() -> None:
    assert {"rest_token.json", "rest_request.json", "http_api_v2.json"} <= set(AUTHORIZER_EVENTS)


def powertools_request(event: dict[str, Any]) -> tuple[str, str] | None:
    """Validate ``event`` with Powertools' model for its kind and read it through the matching
    data class; returns the (method, path) Powertools sees, ``None`` for a WebSocket connect."""
    if event["type"] == "TOKEN":
        ApiGatewayAuthorizerToken.model_validate(event)
        token = APIGatewayAuthorizerTokenEvent(event)
        assert token.get_type == "TOKEN" and token.authorization_token
        arn = token.parsed_arn
        return str(arn.http_method), "/" + arn.resource
    if event.get("version") == "2.0":
        ApiGatewayAuthorizerRequestV2.model_validate(event)
        v2 = APIGatewayAuthorizerEventV2(event)
        assert v2.get_type == "REQUEST" and v2.route_arn and v2.route_key and v2.headers
        return v2.request_context.http.method, v2.raw_path
    request = APIGatewayAuthorizerRequestEvent(event)
    assert request.get_type == "REQUEST" and request.method_arn and request.headers
    if is_connect(event):
        # Powertools has no WebSocket *authorizer* model; its $connect request context fits.
        APIGatewayWebSocketConnectEventRequestContext.model_validate(event["requestContext"])
        return None
    ApiGatewayAuthorizerRequest.model_validate(event)
    return request.http_method, request.path


@pytest.mark.parametrize("name", event_params())
def test_our_events_parse_with_powertools(name: str) -> None:
    """Powertools' models accept the file, and its reading of the request is ours."""
    event = load_event(name)
    seen = powertools_request(event)
    ours = parse_event(event)
    if seen is not None:
        assert seen == (ours.method, ours.path)


def check_arn_agreement(raw: str) -> None:
    """Powertools' ``parse_api_gateway_arn`` and ours read the same parts from an ARN (a route
    ARN, ``…/$default`` or ``…/$connect``, only in Powertools' WebSocket reading)."""
    ours = ExecuteApiArn.parse(raw)
    theirs = parse_api_gateway_arn(raw, is_websocket_authorizer=ours.route is not None)
    assert (theirs.partition, theirs.region, theirs.aws_account_id) == (
        ours.partition,
        ours.region,
        ours.account_id,
    )
    assert (theirs.api_id, theirs.stage) == (ours.api_id, ours.stage)
    if ours.route is not None:
        assert (theirs.http_method, theirs.resource) == (None, ours.route)
    else:
        assert (theirs.http_method, "/" + theirs.resource) == (ours.method, ours.path)
    assert theirs.arn == ours.arn


@pytest.mark.parametrize("name", AUTHORIZER_EVENTS)
def test_powertools_arn_parser_agrees_with_ours(name: str) -> None:
    check_arn_agreement(request_arn(load_event(name)))


@pytest.mark.parametrize(
    ("event", "values"),
    [("authorizer", {"resource": "orders"}), ("request-authorizer", {})],
)
def test_powertools_arn_parser_agrees_on_sam_samples(
    sam: SamEvents, event: str, values: dict[str, str]
) -> None:
    check_arn_agreement(request_arn(sam.render("apigateway", event, **values)))


def test_sam_template_path_is_refused_where_powertools_keeps_it(sam: SamEvents) -> None:
    """``{proxy+}`` is a resource template, not a request path: Powertools passes it through;
    we refuse it, since a brace in a policy resource would be an IAM policy variable."""
    raw = request_arn(sam.render("apigateway", "authorizer"))
    assert parse_api_gateway_arn(raw).resource == "{proxy+}"
    with pytest.raises(ValueError, match=r"\{proxy\+\}"):
        ExecuteApiArn.parse(raw)
