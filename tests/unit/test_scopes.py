"""Scopes as a ceiling, as pure functions: permission validation, grants, decisions."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gatekeeper.arn import ExecuteApiArn
from gatekeeper.rbac.evaluator import evaluate, evaluate_wildcard, grants_for
from gatekeeper.rbac.model import ConfigSnapshot, Permission, Role

ROLE = Role(
    name="ops",
    permissions=(
        Permission(methods=("GET",), path="/orders/**", requires_scopes=("orders:read",)),
        Permission(path="/admin/**", requires_scopes=("users:admin", "mfa")),
        Permission(methods=("GET",), path="/health"),
    ),
)
SNAP = ConfigSnapshot(roles={"ops": ROLE})


def allowed(scopes: set[str], method: str, path: str) -> bool:
    grants = grants_for(SNAP, ["ops"], "api", "prod", scopes)
    return evaluate(grants, method, path, None).allowed


def test_a_permission_applies_only_with_all_its_scopes() -> None:
    assert allowed({"orders:read"}, "GET", "/orders/1")
    assert not allowed(set(), "GET", "/orders/1")
    assert not allowed({"orders:write"}, "GET", "/orders/1")
    assert not allowed({"users:admin"}, "DELETE", "/admin/u")  # one of two
    assert allowed({"users:admin", "mfa"}, "DELETE", "/admin/u")
    assert allowed(set(), "GET", "/health")  # unscoped permissions are unaffected


def test_grants_without_scopes_fail_closed() -> None:
    assert [g.rule_id for g in grants_for(SNAP, ["ops"], "api", "prod")] == ["ops#2"]


def test_relevant_scopes_are_those_some_permission_requires() -> None:
    assert SNAP.required_scopes == {"orders:read", "users:admin", "mfa"}
    assert SNAP.relevant_scopes(["openid", "orders:read", "email"]) == {"orders:read"}


def test_console_test_invoke_honours_scopes() -> None:
    arn = ExecuteApiArn.parse("arn:aws:execute-api:us-east-1:123456789012:api/*/GET/orders/1")

    class Request:
        def __init__(self) -> None:
            self.arn, self.method, self.path = arn, "GET", "/orders/1"

    assert evaluate_wildcard(SNAP, ["ops"], Request(), None, {"orders:read"}).allowed
    assert not evaluate_wildcard(SNAP, ["ops"], Request(), None, set()).allowed


@pytest.mark.parametrize("scope", ["", "has space", 'quo"te', "back\\slash", "é", "x" * 257])
def test_required_scopes_must_be_scope_tokens(scope: str) -> None:
    with pytest.raises(ValidationError, match="scope"):
        Permission(path="/x", requires_scopes=(scope,))


def test_a_deny_cannot_require_scopes() -> None:
    """A deny binding only callers with a scope would give more to callers with fewer."""
    with pytest.raises(ValidationError, match="allow permissions only"):
        Permission(effect="deny", path="/x", requires_scopes=("a",))


def test_stored_documents_without_scopes_are_unchanged() -> None:
    assert "requires_scopes" not in Permission(path="/x").model_dump_json()
    scoped = Permission(path="/x", requires_scopes=("a", "a", "b"))
    assert scoped.requires_scopes == ("a", "b")
    assert Permission.model_validate_json(scoped.model_dump_json()) == scoped
