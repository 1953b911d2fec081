"""Scopes as a ceiling, end to end: a permission may require scopes; a key's stored scopes and a
JWT's ``scope``/``scp`` cap what the credential may do, in the decision and in the (cached,
memoised) policy alike."""

from __future__ import annotations

from typing import Any

import pytest

from gatekeeper.iam_simulator import iam_evaluate
from gatekeeper.identity.api_keys import ApiKeyRecord, generate_key
from gatekeeper.rbac.model import Permission, Role, RoleAssignment
from gatekeeper.testing.events import REST_API, method_arn, rest_request_event, rest_token_event
from tests.conftest import World

SCOPED = Role(
    name="scoped-ops",
    permissions=(
        Permission(methods=("GET",), path="/orders/**", requires_scopes=("orders:read",)),
        Permission(methods=("POST",), path="/orders", requires_scopes=("orders:write",)),
        Permission(path="/admin/**", requires_scopes=("users:admin",)),
        Permission(methods=("GET",), path="/health"),  # no scope needed
    ),
)
ORDERS_READ = ("GET", "/orders/o-1")
ORDERS_WRITE = ("POST", "/orders")
DELETE_USER = ("DELETE", "/admin/users/u-1")
HEALTH = ("GET", "/health")
EVERY = (ORDERS_READ, ORDERS_WRITE, DELETE_USER, HEALTH)


@pytest.fixture
def scoped(world: World) -> World:
    world.store.put(
        SCOPED,
        RoleAssignment(principal_id="corp:carol", tenant="acme", roles=("scoped-ops",)),
    )
    world.clock.advance(60)
    return world


def add_key(world: World, scopes: tuple[str, ...]) -> str:
    new = generate_key("gk")
    world.store.put(
        ApiKeyRecord(
            key_id=new.key_id,
            secret_hash=new.secret_hash,
            principal_id="svc:ops",
            tenant="acme",
            roles=("scoped-ops",),
            scopes=scopes,
        )
    )
    world.clock.advance(60)
    return new.plaintext


def policy_allows(result: Any, method: str, path: str) -> bool:
    assert result.response is not None
    document = result.response["policyDocument"]
    return iam_evaluate(document, method_arn(REST_API, "prod", method, path)) == "allow"


def decisions(world: World, headers: dict[str, str]) -> dict[tuple[str, str], str]:
    return {
        (m, p): world.authorizer.authorize(rest_request_event(headers, m, p)).audit.decision
        for m, p in EVERY
    }


def test_a_key_that_can_only_read_orders_cannot_delete_users(scoped: World) -> None:
    key = add_key(scoped, ("orders:read",))
    assert decisions(scoped, {"x-api-key": key}) == {
        ORDERS_READ: "allow",
        ORDERS_WRITE: "deny",
        DELETE_USER: "deny",
        HEALTH: "allow",
    }
    # the policy API Gateway caches for the key says the same about every route
    result = scoped.authorizer.authorize(rest_request_event({"x-api-key": key}, *ORDERS_READ))
    assert result.response is not None and result.response["context"]["policyScope"] == "api"
    assert [policy_allows(result, m, p) for m, p in EVERY] == [True, False, False, True]


def test_a_key_with_every_scope_gets_what_its_roles_allow(scoped: World) -> None:
    key = add_key(scoped, ("orders:read", "orders:write", "users:admin"))
    assert set(decisions(scoped, {"x-api-key": key}).values()) == {"allow"}


def test_a_key_without_scopes_gets_only_unscoped_permissions(scoped: World) -> None:
    key = add_key(scoped, ())
    assert decisions(scoped, {"x-api-key": key}) == {
        ORDERS_READ: "deny",
        ORDERS_WRITE: "deny",
        DELETE_USER: "deny",
        HEALTH: "allow",
    }


@pytest.mark.parametrize(
    "claims",
    [{"scope": "orders:read orders:write"}, {"scp": ["orders:read", "orders:write"]}],
    ids=["scope", "scp-list"],
)
def test_a_jwt_scope_claim_caps_its_caller(scoped: World, claims: dict[str, Any]) -> None:
    token = scoped.token("carol", **claims)
    assert decisions(scoped, {"Authorization": f"Bearer {token}"}) == {
        ORDERS_READ: "allow",
        ORDERS_WRITE: "allow",
        DELETE_USER: "deny",
        HEALTH: "allow",
    }


def test_same_roles_different_scopes_never_share_a_memoised_policy(scoped: World) -> None:
    """The memo is keyed by roles + tenant + API stage: without the scopes in the key, the
    second caller would get the first one's policy, which allows /admin."""
    strong = scoped.token("carol", scope="orders:read users:admin")
    weak = scoped.token("carol", scope="orders:read")
    first = scoped.authorizer.authorize(rest_token_event(f"Bearer {strong}", *ORDERS_READ))
    assert policy_allows(first, *DELETE_USER)
    second = scoped.authorizer.authorize(rest_token_event(f"Bearer {weak}", *ORDERS_READ))
    assert second.audit.decision == "allow"
    assert not policy_allows(second, *DELETE_USER)
    assert policy_allows(second, *ORDERS_READ)
    third = scoped.authorizer.authorize(rest_token_event(f"Bearer {strong}", *ORDERS_READ))
    assert policy_allows(third, *DELETE_USER)


def test_scopes_no_permission_requires_do_not_split_the_memo(
    scoped: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gatekeeper.authorizer as module
    from gatekeeper.policy_builder import build_base as real

    builds: list[str] = []

    def counting(**kwargs: Any) -> Any:
        builds.append(kwargs["base"])
        return real(**kwargs)

    monkeypatch.setattr(module, "build_base", counting)
    for extra in ("openid", "openid profile", "email openid"):
        token = scoped.token("carol", scope=f"orders:read {extra}")
        result = scoped.authorizer.authorize(rest_token_event(f"Bearer {token}", *ORDERS_READ))
        assert result.audit.decision == "allow"
    assert len(builds) == 1


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": 7},
        {"scope": ["orders:read", 7]},
        {"scp": {"orders": "read"}},
        {"scope": "orders:read  orders:write"},  # two spaces: an empty scope token
        {"scope": 'orders:"read"'},
        {"scp": ["orders read"]},
    ],
    ids=["number", "list-with-number", "object", "double-space", "quote", "space-in-item"],
)
def test_malformed_scope_claims_are_a_401(scoped: World, claims: dict[str, Any]) -> None:
    token = scoped.token("carol", **claims)
    result = scoped.authorizer.authorize(rest_token_event(f"Bearer {token}", *HEALTH))
    assert result.unauthorized and result.response is None
    assert result.audit.reason == "invalid_scope_claim"
    assert scoped.audit.events[-1].reason == "invalid_scope_claim"


def test_an_empty_scope_claim_means_no_scopes(scoped: World) -> None:
    token = scoped.token("carol", scope="")
    assert decisions(scoped, {"Authorization": f"Bearer {token}"})[HEALTH] == "allow"
    assert decisions(scoped, {"Authorization": f"Bearer {token}"})[ORDERS_READ] == "deny"
