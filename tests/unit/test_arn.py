"""Parsing the execute-api ARN API Gateway sends, and formatting resource ARNs for policies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from gatekeeper.arn import ExecuteApiArn

PREFIX = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234"
EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_rest_method_arn() -> None:
    arn = ExecuteApiArn.parse(f"{PREFIX}/prod/GET/orders/12")
    assert (arn.partition, arn.region, arn.account_id) == ("aws", "us-east-1", "123456789012")
    assert (arn.api_id, arn.stage, arn.method, arn.path) == (
        "abcdef1234",
        "prod",
        "GET",
        "/orders/12",
    )
    assert arn.base == f"{PREFIX}/prod"
    assert arn.arn == str(arn) == f"{PREFIX}/prod/GET/orders/12"


@pytest.mark.parametrize("suffix", ["/prod/GET/", "/prod/GET"])
def test_root(suffix: str) -> None:
    arn = ExecuteApiArn.parse(PREFIX + suffix)
    assert arn.path == "/"
    assert arn.arn == f"{PREFIX}/prod/GET/"  # API Gateway's form for the root


def test_http_api_route_arn_with_default_stage() -> None:
    arn = ExecuteApiArn.parse(f"{PREFIX}/$default/POST/tenants/acme/orders")
    assert (arn.stage, arn.method, arn.path) == ("$default", "POST", "/tenants/acme/orders")
    assert arn.base == f"{PREFIX}/$default"


def test_other_partition_and_trailing_slash_kept() -> None:
    arn = ExecuteApiArn.parse("arn:aws-cn:execute-api:cn-north-1:123456789012:abc/dev/GET/orders/")
    assert arn.partition == "aws-cn"
    assert arn.path == "/orders/"  # IAM sees ``orders/`` and ``orders`` as different resources
    assert arn.arn.endswith("/dev/GET/orders/")


def test_colons_and_encoded_characters_stay_in_the_path() -> None:
    arn = ExecuteApiArn.parse(f"{PREFIX}/prod/GET/files/a:b/%20x")
    assert arn.path == "/files/a:b/%20x"


@pytest.mark.parametrize("name", ["rest_token.json", "rest_request.json", "http_api_v2.json"])
def test_sample_events_parse(name: str) -> None:
    event = json.loads((EVENTS / name).read_text())
    raw = event.get("methodArn") or event["routeArn"]
    assert ExecuteApiArn.parse(raw).arn == raw


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "arn:aws:s3:::bucket/key",
        "arn:aws:execute-api:us-east-1:123456789012:abcdef1234",
        "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod",
        f"{PREFIX}/prod/get/orders",  # verbs are upper case
        f"{PREFIX}/prod/FETCH/orders",
        f"{PREFIX}/prod/GET/orders/*",  # would become a wildcard in the policy
        f"{PREFIX}/prod/GET/orders/?",
        f"{PREFIX}/prod/GET/orders//1",
        f"{PREFIX}/prod/GET//",
        f"{PREFIX}/prod/GET/a b",
        f"{PREFIX}/prod/GET/orders\n",
        f"{PREFIX}/prod/GET/${{aws:username}}",
        f"{PREFIX}/pr od/GET/orders",
        "arn:aws:execute-api:us-east-1:12345:abcdef1234/prod/GET/orders",
        "arn:aws:execute-api:US-EAST-1:123456789012:abcdef1234/prod/GET/orders",
        "arn:aws:execute-api:us-east-1:123456789012:abc-def/prod/GET/orders",
        "arn:other:execute-api:us-east-1:123456789012:abcdef1234/prod/GET/orders",
    ],
)
def test_malformed_arns_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"ARN|method|path"):
        ExecuteApiArn.parse(raw)


def test_non_string_is_refused() -> None:
    with pytest.raises(ValueError, match="ARN"):
        ExecuteApiArn.parse(None)  # type: ignore[arg-type]


def test_resource_formatting() -> None:
    arn = ExecuteApiArn.parse(f"{PREFIX}/prod/GET/orders/12")
    assert arn.resource("DELETE", "/orders/*") == f"{PREFIX}/prod/DELETE/orders/*"
    assert arn.resource("GET", "/") == f"{PREFIX}/prod/GET/"
    with pytest.raises(ValueError, match="start with"):
        arn.resource("GET", "orders")


@pytest.mark.parametrize(("method", "path"), [("GET", "/orders/*"), ("ANY", "/"), ("GET", "x")])
def test_direct_construction_is_validated_too(method: str, path: str) -> None:
    with pytest.raises(ValidationError):
        ExecuteApiArn(
            region="us-east-1",
            account_id="123456789012",
            api_id="abcdef1234",
            stage="prod",
            method=method,
            path=path,
        )


def test_frozen() -> None:
    arn = ExecuteApiArn.parse(f"{PREFIX}/prod/GET/orders/12")
    with pytest.raises(ValidationError):
        arn.path = "/admin"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "route", "wildcard"),
    [
        (f"{PREFIX}/$default/$default", "$default", False),  # HTTP API catch-all route
        (f"{PREFIX}/prod/$default", "$default", False),
        (f"{PREFIX}/prod/$connect", "$connect", False),  # WebSocket connect
        (f"{PREFIX}/*/GET/", None, True),  # the console's "Test authorizer"
        (f"{PREFIX}/prod/*/orders", None, True),
    ],
)
def test_route_and_console_forms(raw: str, route: str | None, wildcard: bool) -> None:
    arn = ExecuteApiArn.parse(raw)
    assert (arn.route, arn.wildcard, arn.arn) == (route, wildcard, raw)


@pytest.mark.parametrize(
    "raw",
    [
        f"{PREFIX}/prod/$disconnect",  # never authorized by API Gateway
        f"{PREFIX}/prod/$default/orders",
        f"{PREFIX}/prod/POST/{{proxy+}}",  # SAM's template placeholder, not a request
        f"{PREFIX}/*/*/orders/*",
    ],
)
def test_other_route_forms_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="ARN"):
        ExecuteApiArn.parse(raw)
