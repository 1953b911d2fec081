"""Nothing secret leaves the function: no token, key secret or signature in any output."""

from __future__ import annotations

import io
import json
from types import ModuleType
from typing import Any

import pytest

from gatekeeper.identity.api_keys import parse_key
from gatekeeper.testing import forge_hmac, forge_unsigned, rsa_key
from gatekeeper.testing.events import http_api_event, rest_request_event, rest_token_event
from gatekeeper.testing.lambda_context import LocalLambdaContext
from tests.conftest import World
from tests.integration.test_handler import handler  # noqa: F401 - fixture


def secrets_of(world: World) -> tuple[list[str], list[Any]]:
    """Every credential the scenarios use, and the events that carry them."""
    now = int(world.clock())
    tokens = [
        world.token(),
        world.token(iat=now - 7200, exp=now - 3600),
        world.token(key=rsa_key("forged")),
        world.token(aud="someone-else"),
        forge_unsigned({"iss": "https://login.example.com/", "sub": "x"}),
        forge_hmac(
            {"iss": "https://login.example.com/", "sub": "x"}, world.signing_key.public_pem()
        ),
        world.token()[:-10] + "AAAAAAAAAA",  # bad signature
    ]
    keys = [
        world.keys.active,
        world.keys.revoked,
        world.keys.expired,
        world.keys.rotated_expired,
        world.keys.active[:-5] + "zzzzz",
    ]
    needles: list[str] = []
    for token in tokens:
        needles.append(token)
        parts = token.split(".")
        if len(parts) == 3 and len(parts[2]) >= 16:
            needles.append(parts[2])  # the signature alone
    for key in keys:
        needles.append(key)
        needles.append(parse_key(key, "gk")[1])  # the secret alone
    events: list[Any] = []
    for token in tokens:
        events += [
            rest_token_event(f"Bearer {token}", "GET", "/orders"),
            rest_request_event({"Authorization": f"Bearer {token}"}, "DELETE", "/orders/1"),
            http_api_event({"authorization": f"Bearer {token}"}, "GET", "/admin/users"),
        ]
    for key in keys:
        events += [
            rest_token_event(key, "GET", "/orders"),
            http_api_event({"x-api-key": key}, "GET", "/orders/1"),
            rest_request_event(
                {"x-api-key": key, "Authorization": f"Bearer {tokens[0]}"}, "GET", "/"
            ),
        ]
    return needles, events


def test_no_secret_in_logs_responses_or_errors(
    handler: tuple[ModuleType, io.StringIO],  # noqa: F811
    world: World,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    module, log = handler
    needles, events = secrets_of(world)
    outputs: list[str] = []
    for event in events:
        try:
            outputs.append(json.dumps(module.lambda_handler(event, LocalLambdaContext())))
        except Exception as exc:
            outputs.append(f"{type(exc).__name__}: {exc!r} {exc.__cause__!r} {exc.__context__!r}")
        result = world.authorizer.authorize(event)  # the same through the library API
        outputs.append(result.audit.model_dump_json())
        outputs.append(json.dumps(result.response))
    captured = capsys.readouterr()
    haystack = "\n".join([log.getvalue(), captured.out, captured.err, caplog.text, *outputs])
    assert haystack.count('"audit"') == len(events)  # one audit event per decision
    for needle in needles:
        assert needle not in haystack, "a credential leaked into output"


def test_credentials_do_not_appear_in_request_reprs(world: World) -> None:
    from gatekeeper.requests import parse_event

    token = world.token()
    request = parse_event(rest_token_event(f"Bearer {token}", "GET", "/"))
    assert token not in repr(request)
    assert token not in request.model_dump_json()
    assert token not in str(request.credentials)
