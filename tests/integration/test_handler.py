"""The deployed handler file: 401 via the exact "Unauthorized" error, policies otherwise."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from gatekeeper.testing import LocalJwksServer
from gatekeeper.testing.events import rest_token_event
from gatekeeper.testing.lambda_context import LocalLambdaContext
from tests.conftest import TABLE, World, issuer_settings

ROOT = Path(__file__).resolve().parents[2]


def load_handler() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "authorizer_handler_under_test", ROOT / "functions" / "authorizer" / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def handler(
    world: World, jwks_server: LocalJwksServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[ModuleType, io.StringIO]:
    monkeypatch.setenv("GATEKEEPER_CONFIG_TABLE", TABLE)
    monkeypatch.setenv("GATEKEEPER_ISSUERS", json.dumps(issuer_settings(jwks_server.uri)))
    module = load_handler()
    log = io.StringIO()
    module.logger.logger_handler.setStream(log)
    return module, log


def audit_lines(log: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line)["audit"] for line in log.getvalue().splitlines() if '"audit"' in line]


def test_allow_returns_policy_and_logs_one_audit_event(
    handler: tuple[ModuleType, io.StringIO], world: World
) -> None:
    module, log = handler
    response = module.lambda_handler(
        rest_token_event(f"Bearer {world.token()}", "GET", "/orders"), LocalLambdaContext()
    )
    assert response["principalId"] == "corp:alice"
    assert response["policyDocument"]["Statement"]
    [audit] = audit_lines(log)
    assert audit["decision"] == "allow" and audit["principal_id"] == "corp:alice"


def test_unauthorized_raises_the_exact_message(
    handler: tuple[ModuleType, io.StringIO], world: World
) -> None:
    module, log = handler
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        module.lambda_handler(rest_token_event("Bearer nonsense", "GET", "/"), LocalLambdaContext())
    [audit] = audit_lines(log)
    assert audit["decision"] == "unauthorized" and audit["reason"] == "invalid_token"


def test_deny_is_a_policy_not_an_error(
    handler: tuple[ModuleType, io.StringIO], world: World
) -> None:
    module, _ = handler
    response = module.lambda_handler(
        rest_token_event(f"Bearer {world.token()}", "DELETE", "/orders/1"), LocalLambdaContext()
    )
    assert response["context"]["reason"] == "explicit_deny"


@pytest.mark.parametrize("name", ["rest_token.json", "rest_request.json", "http_api_v2.json"])
def test_sample_events_never_crash(handler: tuple[ModuleType, io.StringIO], name: str) -> None:
    """The samples carry placeholder credentials: a clean 401 with a reason, never a 500."""
    module, log = handler
    event = json.loads((ROOT / "events" / name).read_text())
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        module.lambda_handler(event, LocalLambdaContext())
    [audit] = audit_lines(log)
    assert audit["decision"] == "unauthorized"
    assert audit["reason"] in {"missing_claim", "unknown_api_key"}


def test_misconfiguration_denies_and_names_the_variable(
    handler: tuple[ModuleType, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, log = handler
    monkeypatch.setenv("GATEKEEPER_ISSUERS", '[{"name": "corp"}]')
    module.__dict__["_authorizer"] = None  # a new container
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        module.lambda_handler(rest_token_event("Bearer x", "GET", "/"), LocalLambdaContext())
    assert "GATEKEEPER_ISSUERS" in log.getvalue()


def test_warm_container_reuses_the_authorizer(
    handler: tuple[ModuleType, io.StringIO], world: World, jwks_server: LocalJwksServer
) -> None:
    module, _ = handler
    event = rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    module.lambda_handler(event, LocalLambdaContext())
    first = module._authorizer
    module.lambda_handler(event, LocalLambdaContext())
    assert module._authorizer is first
    assert jwks_server.hits == 1


def test_rate_limit_metrics_per_rule(
    handler: tuple[ModuleType, io.StringIO],
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from gatekeeper.rate_limit.rules import LimitRule
    from tests.conftest import COUNTERS

    module, _ = handler
    monkeypatch.setenv("GATEKEEPER_COUNTERS_TABLE", COUNTERS)
    module.__dict__["_authorizer"] = None
    world.store.put(
        LimitRule(rule_id="one-per-minute", scope="principal", limit=1, window="minute")
    )
    event = rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    module.lambda_handler(event, LocalLambdaContext())
    denied = module.lambda_handler(event, LocalLambdaContext())
    assert denied["context"]["reason"] == "rate_limited"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    by_name = {
        metric["Name"]: line
        for line in lines
        for directive in line["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert by_name["RateLimitLimited"]["rule"] == "one-per-minute"
    # the common path writes no metrics line: decisions and allowed checks are counted from the
    # audit line by the stack's metric filters
    assert "RateLimitAllowed" not in by_name
    assert not any(name.startswith("Decision_") for name in by_name)
