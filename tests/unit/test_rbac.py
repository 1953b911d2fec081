"""The RBAC decision is pure: patterns, inheritance, deny-wins, tenants, claim mappings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gatekeeper.identity.principal import Principal
from gatekeeper.rbac.evaluator import evaluate, grants_for, resolve_roles
from gatekeeper.rbac.model import (
    ApiRoutes,
    ClaimMapping,
    ConfigSnapshot,
    Permission,
    Role,
    RoleAssignment,
    RoleCycleError,
    parse_pattern,
    parse_route,
    path_matches,
    split_path,
)


def allow(path: str, *methods: str, **kw: str) -> Permission:
    return Permission(path=path, methods=methods or ("*",), **kw)


def deny(path: str, *methods: str, **kw: str) -> Permission:
    return Permission(effect="deny", path=path, methods=methods or ("*",), **kw)


def decide(perms: list[Permission], method: str, path: str, tenant: str | None = None) -> bool:
    snap = ConfigSnapshot(roles={"r": Role(name="r", permissions=tuple(perms))})
    return evaluate(grants_for(snap, ["r"], "api", "prod"), method, path, tenant).allowed


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/orders", "/orders", True),
        ("/orders", "/orders/1", False),
        ("/orders/{id}", "/orders/1", True),
        ("/orders/{id}", "/orders", False),
        ("/orders/{id}", "/orders/1/items", False),
        ("/orders/*", "/orders/1", True),
        ("/orders/*/items", "/orders/1/items", True),
        ("/orders/*/items", "/orders/1/2/items", False),
        ("/orders/**", "/orders", True),
        ("/orders/**", "/orders/1/items/2", True),
        ("/orders/**", "/ordersx", False),
        ("/**", "/", True),
        ("/**", "/anything/at/all", True),
        ("/", "/", True),
        ("/", "/x", False),
    ],
)
def test_path_patterns(pattern: str, path: str, expected: bool) -> None:
    assert path_matches(parse_pattern(pattern), split_path(path), None) is expected


@pytest.mark.parametrize(
    "bad", ["orders", "/orders//x", "/**/x", "/a/b**", "/{1bad}", "/a b", "/x/{id"]
)
def test_invalid_patterns_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"pattern|segment"):
        parse_pattern(bad)
    with pytest.raises(ValidationError):
        Permission(path=bad)


def test_methods_are_normalised_and_validated() -> None:
    assert Permission(path="/x", methods=["get", "post"]).methods == ("GET", "POST")
    with pytest.raises(ValidationError):
        Permission(path="/x", methods=["FETCH"])
    with pytest.raises(ValidationError):
        Permission(path="/x", methods=["*", "GET"])
    with pytest.raises(ValidationError):
        Permission(path="/x", methods=[])


def test_default_deny_and_method_match() -> None:
    perms = [allow("/orders/{id}", "GET")]
    assert decide(perms, "GET", "/orders/1")
    assert not decide(perms, "POST", "/orders/1")
    assert not decide(perms, "GET", "/invoices/1")
    assert not decide([], "GET", "/")


def test_explicit_deny_wins_whatever_the_order() -> None:
    perms = [allow("/**"), deny("/admin/**"), allow("/admin/public")]
    assert decide(perms, "GET", "/orders")
    assert not decide(perms, "GET", "/admin/public")
    assert not decide(list(reversed(perms)), "GET", "/admin/public")


def test_decision_names_the_rule() -> None:
    snap = ConfigSnapshot(
        roles={"r": Role(name="r", permissions=(allow("/a"), deny("/b", "DELETE")))}
    )
    grants = grants_for(snap, ["r"], "api", "prod")
    assert evaluate(grants, "GET", "/a", None).matched_rule == "r#0"
    denied = evaluate(grants, "DELETE", "/b", None)
    assert (denied.reason, denied.matched_rule) == ("explicit_deny", "r#1")
    assert evaluate(grants, "GET", "/c", None).reason == "no_matching_permission"


def test_permissions_limited_to_api_and_stage() -> None:
    snap = ConfigSnapshot(
        roles={"r": Role(name="r", permissions=(allow("/x", api_id="api1", stage="prod"),))}
    )
    assert evaluate(grants_for(snap, ["r"], "api1", "prod"), "GET", "/x", None).allowed
    assert not evaluate(grants_for(snap, ["r"], "api2", "prod"), "GET", "/x", None).allowed
    assert not evaluate(grants_for(snap, ["r"], "api1", "dev"), "GET", "/x", None).allowed


def test_tenant_segment_matches_only_own_tenant() -> None:
    perms = [allow("/tenants/{tenant}/**")]
    assert decide(perms, "GET", "/tenants/acme/orders", "acme")
    assert not decide(perms, "GET", "/tenants/globex/orders", "acme")
    assert not decide(perms, "GET", "/tenants/acme/orders", None)


def test_inheritance_is_transitive_and_deny_inherited_wins() -> None:
    snap = ConfigSnapshot(
        roles={
            "reader": Role(name="reader", permissions=(allow("/orders/**", "GET"),)),
            "clerk": Role(
                name="clerk", inherits=("reader",), permissions=(allow("/orders", "POST"),)
            ),
            "lead": Role(name="lead", inherits=("clerk",), permissions=(deny("/orders/secret"),)),
        }
    )
    assert snap.expand(["lead"]) == ("lead", "clerk", "reader")
    grants = grants_for(snap, snap.expand(["lead"]), "a", "p")
    assert evaluate(grants, "GET", "/orders/1", None).allowed
    assert evaluate(grants, "POST", "/orders", None).allowed
    assert not evaluate(grants, "GET", "/orders/secret", None).allowed
    assert snap.expand(["unknown"]) == ()


@pytest.mark.parametrize(
    "roles",
    [
        {"a": ("b",), "b": ("a",)},
        {"a": ("b",), "b": ("c",), "c": ("a",)},
        {"a": ("missing",)},
    ],
)
def test_inheritance_cycles_and_unknown_parents_are_rejected(
    roles: dict[str, tuple[str, ...]],
) -> None:
    with pytest.raises((RoleCycleError, ValidationError)):
        ConfigSnapshot(roles={n: Role(name=n, inherits=p) for n, p in roles.items()})


def test_self_inheritance_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Role(name="a", inherits=("a",))


def test_resolve_roles_merges_sources_per_tenant() -> None:
    snap = ConfigSnapshot(
        roles={n: Role(name=n) for n in ("keyrole", "acme-role", "globex-role", "admin", "other")},
        claim_mappings=(
            ClaimMapping(claim="groups", value="admins", roles=("admin",), issuer="corp"),
            ClaimMapping(claim="groups", value="admins", roles=("other",), issuer="partner"),
        ),
    )
    assignments = (
        RoleAssignment(principal_id="corp:alice", tenant="acme", roles=("acme-role",)),
        RoleAssignment(principal_id="corp:alice", tenant="globex", roles=("globex-role",)),
    )
    alice = Principal(
        principal_id="corp:alice",
        auth_method="jwt",
        issuer="corp",
        tenant="acme",
        roles=frozenset({"keyrole"}),
        attributes={"groups": ("admins", "staff")},
    )
    assert set(resolve_roles(snap, alice, assignments)) == {"keyrole", "acme-role", "admin"}
    keyed = alice.model_copy(update={"auth_method": "api_key"})
    assert "admin" not in resolve_roles(snap, keyed, assignments)  # claims come only from JWTs


def test_route_catalog() -> None:
    assert parse_route("get /orders/{id}") == ("GET", "/orders/{id}")
    assert parse_route("ANY /{proxy+}") == ("ANY", "/{proxy+}")
    for bad in ("/orders", "FETCH /x", "GET orders"):
        with pytest.raises(ValueError, match="route"):
            parse_route(bad)
    snap = ConfigSnapshot(
        apis=(
            ApiRoutes(api_id="a", stage="*", routes=("GET /x",)),
            ApiRoutes(api_id="a", stage="prod", routes=("GET /y",)),
        )
    )
    assert snap.routes_for("a", "prod") == ("GET /y",)
    assert snap.routes_for("a", "dev") == ("GET /x",)
    assert snap.routes_for("b", "prod") is None


segment = st.sampled_from(["a", "b", "c"])
pattern_segment = st.sampled_from(["a", "b", "*", "{p}"])


@given(
    st.lists(pattern_segment, max_size=3),
    st.booleans(),
    st.lists(segment, max_size=4),
)
def test_pattern_matching_agrees_with_a_regex(
    parts: list[str], rest: bool, path: list[str]
) -> None:
    """Cross-check the segment matcher against an independent regex formulation."""
    import re

    pattern = "/" + "/".join([*parts, "**"] if rest else parts)
    regex = "".join("/[^/]+" if p in ("*", "{p}") else "/" + p for p in parts)
    regex = "^" + regex + ("(/.*)?$" if rest else "$")
    concrete = "/" + "/".join(path)
    expected = re.match(regex, "" if concrete == "/" else concrete) is not None
    assert path_matches(parse_pattern(pattern), split_path(concrete), None) is expected
