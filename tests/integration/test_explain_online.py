"""`gatekeeper explain` online: against the config and counters tables (moto), with real
credentials, and it agrees with the real authorizer on every request it explains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gatekeeper import cli
from gatekeeper.rate_limit.rules import LimitRule, RuleMatch
from gatekeeper.testing.events import REST_API, rest_request_event, rest_token_event
from tests.conftest import COUNTERS, TABLE, World, issuer_settings, make_world


def explain_json(capsys: pytest.CaptureFixture[str], world: World, *argv: str) -> dict[str, Any]:
    issuers = json.dumps(issuer_settings(world.jwks.uri))
    base = ["--config-table", TABLE, "--counters-table", COUNTERS, "--issuers", issuers]
    assert cli.main(["explain", *base, "--json", "--api-id", REST_API, *argv]) == 0, capsys
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


@pytest.mark.parametrize(
    ("subject", "claims", "method", "path"),
    [
        ("alice", {}, "GET", "/orders/o-1"),
        ("alice", {}, "DELETE", "/orders/o-1"),
        ("alice", {}, "GET", "/tenants/globex/reports"),
        ("bob", {"tenant": "globex"}, "POST", "/orders"),
        ("carol", {"groups": ["platform-admins"]}, "DELETE", "/admin/users/u-1"),
        ("dave", {"scope": "openid orders:read"}, "GET", "/orders"),
        ("erin", {}, "GET", "/health"),
    ],
)
def test_explain_agrees_with_the_authorizer(
    world: World,
    capsys: pytest.CaptureFixture[str],
    subject: str,
    claims: dict[str, Any],
    method: str,
    path: str,
) -> None:
    token = world.token(subject, **claims)
    result = world.authorizer.authorize(rest_token_event(f"Bearer {token}", method, path))
    data = explain_json(capsys, world, "--token", token, method, path)
    assert data["identity"]["verified"] is True
    assert data["identity"]["principal_id"] == f"corp:{subject}"
    assert (data["outcome"], data["reason"]) == (result.audit.decision, result.audit.reason)
    assert data["decision"]["matched_rule"] == result.audit.matched_rule
    assert data["policy"]["scope"] == result.audit.policy_scope
    assert result.response is not None
    assert data["policy"]["document"] == result.response["policyDocument"]


def test_an_api_key_and_its_roles(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    data = explain_json(capsys, world, "--api-key", world.keys.active, "GET", "/orders/o-1")
    assert data["identity"]["principal_id"] == "svc:billing"
    assert data["identity"]["auth_method"] == "api_key"
    assert [(r["role"], r["via"]) for r in data["roles"]] == [
        ("orders-reader", "api_key"),
        ("public", "inherited"),
    ]
    assert data["outcome"] == "allow"


def test_a_revoked_key_is_the_authorizers_401(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explain", "--config-table", TABLE, "--api-key", world.keys.revoked, "GET", "/orders"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "401 api_key_revoked" in err and len(err.splitlines()) == 1
    assert world.keys.revoked.rsplit("_", 1)[1] not in err  # never the secret


def test_an_event_file(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event = rest_request_event(
        {"x-api-key": world.keys.active, "X-Tenant-Id": "globex"}, "GET", "/orders"
    )
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    data = explain_json(capsys, world, "--event", str(path))
    assert (data["outcome"], data["reason"]) == ("deny", "tenant_mismatch")
    assert data["request"]["source_ip"] == "203.0.113.10"


def test_current_counters(
    dynamodb: Any, jwks_server: Any, signing_key: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    world = make_world(dynamodb, jwks_server, signing_key, counters=True)
    rule = LimitRule(
        rule_id="invoices",
        scope="principal",
        match=RuleMatch(methods=("GET",), path="/orders/*/invoice"),
        limit=5,
        window="hour",
    )
    world.store.put(rule)
    token = world.token("bob", tenant="globex")
    for _ in range(3):
        answer = world.authorizer.authorize(
            rest_token_event(f"Bearer {token}", "GET", "/orders/o-7/invoice")
        )
        assert answer.audit.decision == "allow"
    data = explain_json(capsys, world, "--token", token, "GET", "/orders/o-7/invoice")
    limits = {limit["rule_id"]: limit for limit in data["limits"]}
    assert limits["invoices"]["current"] == 3 and limits["invoices"]["scope_key"] == "corp:bob"


@pytest.mark.parametrize("scope", ["openid orders:write", "openid"])
def test_required_scopes_agree_with_the_authorizer(
    world: World, capsys: pytest.CaptureFixture[str], scope: str
) -> None:
    from gatekeeper.rbac.model import Permission, Role, RoleAssignment

    writer = Role(
        name="writer",
        permissions=(
            Permission(methods=("POST",), path="/orders", requires_scopes=("orders:write",)),
        ),
    )
    world.store.put(
        writer, RoleAssignment(principal_id="corp:wanda", tenant="acme", roles=("writer",))
    )
    token = world.token("wanda", scope=scope)
    result = world.authorizer.authorize(rest_token_event(f"Bearer {token}", "POST", "/orders"))
    data = explain_json(capsys, world, "--token", token, "POST", "/orders")
    assert (data["outcome"], data["reason"]) == (result.audit.decision, result.audit.reason)
    assert data["decision"]["matched_rule"] == result.audit.matched_rule
    assert result.response is not None
    assert data["policy"]["document"] == result.response["policyDocument"]
    assert bool(data["not_applied"]) == (scope == "openid")
