"""The sample events in ``events/`` through the real handler file, with live credentials put where
each shape carries them: allowed where RBAC allows, denied where it does not, 401 without.

``$default``-route HTTP events, the console's test form, WebSocket ``$connect`` and proxy-API
events are the shapes real APIs send that the older parser refused (issue 11).
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gatekeeper.testing.lambda_context import LocalLambdaContext
from tests.conftest import World
from tests.integration.test_handler import audit_lines, handler  # noqa: F401 - the fixture

EVENTS = Path(__file__).resolve().parents[2] / "events"
Setter = Callable[[dict[str, Any], str | None], None]


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def _headers(event: dict[str, Any], name: str, value: str | None) -> None:
    for field in ("headers", "multiValueHeaders"):
        found = event.get(field)
        if not isinstance(found, dict):
            continue
        for key in [k for k in found if k.lower() in (name, "x-api-key", "x-tenant-id")]:
            del found[key]
        if value is not None:
            found[name] = value if field == "headers" else [value]


def bearer_header(event: dict[str, Any], token: str | None) -> None:
    _headers(event, "authorization", None if token is None else f"Bearer {token}")


def token_field(event: dict[str, Any], token: str | None) -> None:
    event["authorizationToken"] = "" if token is None else f"Bearer {token}"


def query_token(event: dict[str, Any], token: str | None) -> None:
    event["queryStringParameters"] = {} if token is None else {"token": token}
    event["multiValueQueryStringParameters"] = {} if token is None else {"token": [token]}


# (event file, where its credential goes, caller allowed, caller denied)
SHAPES: list[tuple[str, Setter, str, str]] = [
    ("rest_token.json", token_field, "alice", "nobody"),
    ("rest_request.json", bearer_header, "alice", "nobody"),
    ("rest_request_proxy.json", bearer_header, "alice", "nobody"),
    ("http_api_v1.json", bearer_header, "alice", "nobody"),
    ("http_api_v2.json", bearer_header, "alice", "nobody"),
    ("http_api_v2_default_route.json", bearer_header, "alice", "nobody"),
    ("rest_token_console_test.json", token_field, "admin", "alice"),  # GET /: admins only
    ("websocket_connect.json", query_token, "admin", "alice"),  # GET /$connect: admins only
]


def token_for(world: World, caller: str) -> str:
    if caller == "admin":
        return world.token("root", groups=["platform-admins"])
    return world.token(caller)


def call(module: ModuleType, event: dict[str, Any]) -> dict[str, Any] | None:
    """The handler's answer, or None for the exact "Unauthorized" error (API Gateway's 401);
    anything else it raises fails the test (API Gateway would answer 500)."""
    try:
        result: dict[str, Any] = module.lambda_handler(event, LocalLambdaContext())
    except module.Unauthorized as exc:
        assert exc.args == ("Unauthorized",)  # noqa: PT017 - the message is the contract
        return None
    return result


def is_allowed(response: dict[str, Any]) -> bool:
    if "isAuthorized" in response:
        return bool(response["isAuthorized"])
    effects = {s["Effect"] for s in response["policyDocument"]["Statement"]}
    return "Allow" in effects and response["context"]["reason"] == "allowed"


@pytest.mark.parametrize(("name", "put", "ok", "no"), SHAPES, ids=[s[0] for s in SHAPES])
def test_each_shape_follows_rbac(
    handler: tuple[ModuleType, io.StringIO],  # noqa: F811 - the imported fixture
    world: World,
    name: str,
    put: Setter,
    ok: str,
    no: str,
) -> None:
    module, log = handler
    sample = load(name)
    expected_path = None
    for caller, allowed in ((ok, True), (no, False)):
        event = copy.deepcopy(sample)
        put(event, token_for(world, caller))
        response = call(module, event)
        assert response is not None, f"{name}: 401 for {caller}"
        assert is_allowed(response) is allowed, (name, caller, response["context"])
        expected_path = response["context"]["path"]
    event = copy.deepcopy(sample)
    put(event, None)
    assert call(module, event) is None  # no credential: 401
    audits = audit_lines(log)
    assert [a["decision"] for a in audits] == ["allow", "deny", "unauthorized"]
    shapes = {a["event_shape"] for a in audits}
    assert len(shapes) == 1 and audits[0]["path"] == expected_path


def test_default_route_policy_names_the_route_when_iam_is_asked_for(
    handler: tuple[ModuleType, io.StringIO],  # noqa: F811
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``http_api_response=iam`` a ``$default`` route's answer can only name the route ARN,
    so its scope is "request": exact only with the request in the cache key (the construct's)."""
    module, _ = handler
    monkeypatch.setenv("GATEKEEPER_HTTP_API_RESPONSE", "iam")
    monkeypatch.setattr(module, "_authorizer", None)
    event = load("http_api_v2_default_route.json")
    bearer_header(event, world.token())
    response = call(module, event)
    assert response is not None
    [statement] = response["policyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "execute-api:Invoke",
        "Resource": [event["routeArn"]],
    }
    assert response["context"]["policyScope"] == "request"
    assert response["context"]["eventShape"] == "default_route"


@pytest.mark.parametrize(
    ("name", "field", "path"),
    [
        ("http_api_v2_default_route.json", "rawPath", "/orders/../admin/users"),
        ("http_api_v2_default_route.json", "rawPath", "/orders/o-1%2F..%2F..%2Fadmin"),
        ("rest_request_proxy.json", "path", "/orders/o-1001/./invoice"),
    ],
)
def test_non_canonical_paths_are_401_before_any_signature_work(
    handler: tuple[ModuleType, io.StringIO],  # noqa: F811
    world: World,
    name: str,
    field: str,
    path: str,
) -> None:
    module, log = handler
    event = load(name)
    bearer_header(event, world.token())
    event[field] = path
    assert call(module, event) is None
    [audit] = audit_lines(log)
    assert (audit["decision"], audit["reason"]) == ("unauthorized", "non_canonical_path")
