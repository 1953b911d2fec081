"""The authorizer end to end against moto DynamoDB and a local JWKS server."""

from __future__ import annotations

from typing import Any

import pytest

from gatekeeper.authorizer import AuthorizerResult
from gatekeeper.iam_simulator import iam_evaluate
from gatekeeper.rbac.model import Permission, Role
from gatekeeper.testing import rsa_key
from gatekeeper.testing.events import (
    HTTP_API,
    REST_API,
    http_api_event,
    method_arn,
    rest_request_event,
    rest_token_event,
)
from gatekeeper.testing.sample_access import ROUTES
from tests.conftest import World, make_world


def allowed(result: AuthorizerResult, arn: str | None = None) -> bool:
    """Whether API Gateway would let the request (or ``arn``) through with this response."""
    response = result.response
    if response is None:
        return False
    if "isAuthorized" in response:
        return bool(response["isAuthorized"])
    target = arn or result_arn(result)
    return iam_evaluate(response["policyDocument"], target) == "allow"


def result_arn(result: AuthorizerResult) -> str:
    a = result.audit
    assert a.api_id and a.stage and a.method and a.path
    return method_arn(a.api_id, a.stage, a.method, a.path)


# --- event kinds -----------------------------------------------------------------------------
def test_rest_token_event(world: World) -> None:
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token()}", "GET", "/orders/o-1")
    )
    assert allowed(result)
    assert result.response is not None
    assert result.response["principalId"] == "corp:alice"
    ctx = result.response["context"]
    assert ctx["tenant"] == "acme" and ctx["authMethod"] == "jwt" and ctx["policyScope"] == "api"
    assert all(isinstance(v, str | int | bool) for v in ctx.values())
    assert result.audit.decision == "allow" and result.audit.event_kind == "rest_token"


def test_rest_request_event(world: World) -> None:
    event = rest_request_event(
        {"Authorization": f"Bearer {world.token()}", "X-Tenant-Id": "acme"}, "POST", "/orders"
    )
    result = world.authorizer.authorize(event)
    assert allowed(result)
    assert result.audit.source_ip == "203.0.113.10"
    assert result.audit.request_id == event["requestContext"]["requestId"]
    assert result.audit.route_key == "POST /orders"


def test_http_api_simple_response(world: World) -> None:
    result = world.authorizer.authorize(
        http_api_event({"x-api-key": world.keys.active}, "GET", "/orders/o-1")
    )
    assert result.response is not None
    assert result.response["isAuthorized"] is True
    assert result.response["context"]["keyId"] == result.audit.key_id
    assert set(result.response) == {"isAuthorized", "context"}
    denied = world.authorizer.authorize(
        http_api_event({"x-api-key": world.keys.active}, "DELETE", "/admin/users/1")
    )
    assert denied.response is not None and denied.response["isAuthorized"] is False


def test_http_api_iam_format(dynamodb: Any, jwks_server: Any, signing_key: Any) -> None:
    world = make_world(dynamodb, jwks_server, signing_key, http_api_response="iam")
    result = world.authorizer.authorize(
        http_api_event({"authorization": f"Bearer {world.token()}"}, "GET", "/orders")
    )
    assert result.response is not None and "policyDocument" in result.response
    assert allowed(result)


def test_usage_identifier_key_for_api_key_callers(
    dynamodb: Any, jwks_server: Any, signing_key: Any
) -> None:
    world = make_world(dynamodb, jwks_server, signing_key, usage_identifier_key=True)
    result = world.authorizer.authorize(
        rest_request_event({"x-api-key": world.keys.active}, "GET", "/orders")
    )
    assert result.response is not None
    assert result.response["usageIdentifierKey"] == f"usage-{result.audit.key_id}"
    jwt_result = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    )
    assert jwt_result.response is not None and "usageIdentifierKey" not in jwt_result.response


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (None, "not_an_authorizer_event"),
        ([], "not_an_authorizer_event"),
        ("TOKEN", "not_an_authorizer_event"),
        ({}, "not_an_authorizer_event"),
        ({"type": "WEBSOCKET", "methodArn": "x"}, "not_an_authorizer_event"),
        ({"type": "TOKEN"}, "malformed_event"),
        (
            {"type": "TOKEN", "methodArn": "not-an-arn", "authorizationToken": "x"},
            "malformed_event",
        ),
        (
            {"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:1:api"},
            "malformed_event",
        ),
        ({"version": "2.0", "type": "REQUEST", "routeArn": "x"}, "malformed_event"),
        ({"type": "REQUEST", "methodArn": 42}, "malformed_event"),
    ],
)
def test_malformed_events_are_401_with_reason(world: World, event: Any, reason: str) -> None:
    result = world.authorizer.authorize(event)
    assert result.unauthorized and result.response is None
    assert result.audit.decision == "unauthorized"
    assert result.audit.reason == reason


# --- credentials -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("active", "allowed"),
        ("rotated_in_grace", "allowed"),
        ("revoked", "api_key_revoked"),
        ("expired", "api_key_expired"),
        ("rotated_expired", "api_key_rotated"),
    ],
)
def test_api_key_states(world: World, state: str, expected: str) -> None:
    key = getattr(world.keys, state)
    result = world.authorizer.authorize(rest_token_event(key, "GET", "/orders"))
    assert result.audit.reason == expected
    assert allowed(result) is (expected == "allowed")
    assert result.unauthorized is (expected != "allowed")


def test_api_key_wrong_secret_unknown_and_malformed(world: World) -> None:
    from gatekeeper.identity.api_keys import parse_key

    key_id, _ = parse_key(world.keys.active, "gk")
    wrong = f"gk_{key_id}_{'A' * 43}"
    cases = {
        wrong: "invalid_api_key_secret",
        f"gk_ffffffffffffffff_{'A' * 43}": "unknown_api_key",
        "gk_nonsense": "malformed_api_key",
    }
    for key, reason in cases.items():
        result = world.authorizer.authorize(
            rest_request_event({"x-api-key": key}, "GET", "/orders")
        )
        assert result.unauthorized and result.audit.reason == reason


def test_missing_and_ambiguous_credentials(world: World) -> None:
    none = world.authorizer.authorize(rest_request_event({}, "GET", "/orders"))
    assert none.unauthorized and none.audit.reason == "missing_credentials"
    both = world.authorizer.authorize(
        rest_request_event(
            {"Authorization": f"Bearer {world.token()}", "x-api-key": world.keys.active},
            "GET",
            "/orders",
        )
    )
    assert both.unauthorized and both.audit.reason == "ambiguous_credentials"
    foreign = world.authorizer.authorize(  # a usage-plan key beside our bearer token is fine
        rest_request_event(
            {"Authorization": f"Bearer {world.token()}", "x-api-key": "AbCdEf0123456789"},
            "GET",
            "/orders",
        )
    )
    assert allowed(foreign)


def test_jwt_failures_are_401_with_reason(world: World) -> None:
    now = int(world.clock())
    expired = world.token(iat=now - 7200, exp=now - 3600)
    forged = world.token(key=rsa_key("forged"))
    for token, reason in ((expired, "token_expired"), (forged, "unknown_kid")):
        result = world.authorizer.authorize(rest_token_event(f"Bearer {token}", "GET", "/orders"))
        assert result.unauthorized and result.audit.reason == reason


# --- RBAC --------------------------------------------------------------------------------------
def test_forbidden_route_is_deny_with_rule(world: World) -> None:
    result = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token()}", "DELETE", "/orders/o-1")
    )
    assert not result.unauthorized and not allowed(result)
    assert result.audit.decision == "deny"
    assert result.audit.reason == "explicit_deny"
    assert result.audit.matched_rule == "orders-clerk#2"


def test_tenant_header_mismatch_and_isolation(world: World) -> None:
    token = f"Bearer {world.token()}"
    mismatch = world.authorizer.authorize(
        rest_request_event({"Authorization": token, "X-Tenant-Id": "globex"}, "GET", "/orders")
    )
    assert mismatch.audit.reason == "tenant_mismatch" and not allowed(mismatch)
    own = world.authorizer.authorize(rest_token_event(token, "GET", "/tenants/acme/reports"))
    other = world.authorizer.authorize(rest_token_event(token, "GET", "/tenants/globex/reports"))
    assert allowed(own) and not allowed(other)
    # the cached policy must not let acme's token into globex either
    assert not allowed(own, method_arn(REST_API, "prod", "GET", "/tenants/globex/reports"))


def test_roles_in_another_tenant_do_not_apply(world: World) -> None:
    """bob is an orders-reader in globex; presenting tenant acme gives him nothing."""
    as_globex = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token('bob', tenant='globex')}", "GET", "/orders")
    )
    as_acme = world.authorizer.authorize(
        rest_token_event(f"Bearer {world.token('bob', tenant='acme')}", "GET", "/orders")
    )
    assert allowed(as_globex) and not allowed(as_acme)


def sample_paths(route: str) -> list[tuple[str, str]]:
    verb, path = route.split(" ", 1)
    out = []
    for value in ("o-1", "acme", "globex", "x"):
        concrete = "/".join(value if p.startswith("{") else p for p in path.split("/"))
        out.append((verb, concrete or "/"))
    return out


# expected: which catalog routes each caller may call (checked on every route, every sample)
EXPECTED: dict[str, set[str]] = {
    "alice": {
        "GET /health",
        "GET /orders",
        "POST /orders",
        "GET /orders/{id}",
        "PUT /orders/{id}",
        "GET /orders/{id}/invoice",
        "GET /tenants/{tenantId}/reports@acme",
        "POST /tenants/{tenantId}/reports@acme",
    },
    "bob": {"GET /health", "GET /orders", "GET /orders/{id}", "GET /orders/{id}/invoice"},
    "carol": set(ROUTES),
    "dave": set(),
}


def expected_allow(who: str, verb: str, route: str, concrete: str) -> bool:
    allowed_routes = EXPECTED[who]
    if f"{verb} {route}" in allowed_routes:
        return True
    tenant = concrete.split("/")[2] if concrete.startswith("/tenants/") else None
    return tenant is not None and f"{verb} {route}@{tenant}" in allowed_routes


@pytest.mark.parametrize("who", sorted(EXPECTED))
@pytest.mark.parametrize("api", ["rest", "http"])
def test_policy_allows_exactly_the_permitted_routes(world: World, who: str, api: str) -> None:
    """The cached policy is checked against EVERY route of the API, not only the requested one."""
    claims_by_who: dict[str, dict[str, Any]] = {
        "alice": {},
        "bob": {"tenant": "globex"},
        "carol": {"groups": ["platform-admins"]},
        "dave": {},
    }
    claims = claims_by_who[who]
    token = f"Bearer {world.token(who, **claims)}"
    if api == "rest":
        result = world.authorizer.authorize(rest_token_event(token, "GET", "/health"))
        api_id, stage = REST_API, "prod"
    else:
        world.authorizer._settings = world.authorizer._settings.model_copy(
            update={"http_api_response": "iam"}
        )
        result = world.authorizer.authorize(
            http_api_event({"authorization": token}, "GET", "/health")
        )
        api_id, stage = HTTP_API, "$default"
    assert result.response is not None
    if who != "dave":
        assert result.audit.policy_scope == "api"
    for route in ROUTES:
        verb, template = route.split(" ", 1)
        for _, concrete in sample_paths(route):
            arn = method_arn(api_id, stage, verb, concrete)
            want = expected_allow(who, verb, template, concrete)
            got = iam_evaluate(result.response["policyDocument"], arn) == "allow"
            assert got is want, f"{who}: {verb} {concrete}: policy={got} expected={want}"
    # never another API or stage
    assert (
        iam_evaluate(
            result.response["policyDocument"], method_arn("otherapi01", stage, "GET", "/health")
        )
        != "allow"
    )


def test_role_change_takes_effect_within_refresh_bound(world: World) -> None:
    token = f"Bearer {world.token('bob', tenant='globex')}"
    event = rest_token_event(token, "GET", "/admin/users")
    assert not allowed(world.authorizer.authorize(event))
    world.store.put(
        Role(
            name="orders-reader",
            inherits=("public",),
            permissions=(
                Permission(methods=("GET",), path="/orders/**"),
                Permission(methods=("GET",), path="/admin/users"),
            ),
        )
    )
    world.clock.advance(4)
    assert not allowed(world.authorizer.authorize(event))  # still cached
    world.clock.advance(1)
    assert allowed(world.authorizer.authorize(event))  # picked up at the 5 s check


def test_revocation_takes_effect_within_refresh_bound(world: World) -> None:
    from gatekeeper.identity.api_keys import parse_key

    event = rest_token_event(world.keys.active, "GET", "/orders")
    assert allowed(world.authorizer.authorize(event))
    key_id, _ = parse_key(world.keys.active, "gk")
    record = world.store.get_api_key(key_id)
    assert record is not None
    world.store.put(record.model_copy(update={"status": "revoked"}))
    world.clock.advance(5)
    result = world.authorizer.authorize(event)
    assert result.unauthorized and result.audit.reason == "api_key_revoked"


def test_warm_path_reads_nothing_from_dynamodb(world: World) -> None:
    """After the first request, RBAC and key data come from the cache until the next check."""
    calls: list[str] = []
    world.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: calls.append(model.name)
    )
    token_event = rest_token_event(f"Bearer {world.token()}", "GET", "/orders")
    key_event = rest_token_event(world.keys.active, "GET", "/orders")
    world.authorizer.authorize(token_event)
    world.authorizer.authorize(key_event)
    cold = len(calls)
    assert cold > 0
    for _ in range(20):
        world.clock.advance(0.1)
        assert allowed(world.authorizer.authorize(token_event))
        assert allowed(world.authorizer.authorize(key_event))
    assert len(calls) == cold
    world.clock.advance(5)
    world.authorizer.authorize(token_event)
    assert calls[cold:] == ["GetItem"]  # one version check; no reload: nothing changed


def test_no_request_pays_a_policy_rebuild_after_the_first(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One build per (roles, tenant, API stage, config version), whatever the scope; a config
    change is a new version and so one new build."""
    import gatekeeper.authorizer as module
    from gatekeeper.policy_builder import build_base as real
    from gatekeeper.rbac.model import Permission, Role, RoleAssignment

    # IAM globs cannot allow one invoice and deny the others: "request" scope, every time
    odd = Role(
        name="odd",
        permissions=(
            Permission(methods=("GET",), path="/orders/*"),
            Permission(methods=("GET",), path="/orders/o-special/invoice"),
        ),
    )
    world.store.put(odd, RoleAssignment(principal_id="corp:dave", tenant="acme", roles=("odd",)))
    world.clock.advance(60)
    builds: list[str] = []

    def counting(**kwargs: Any) -> Any:
        builds.append(kwargs["base"])
        return real(**kwargs)

    monkeypatch.setattr(module, "build_base", counting)
    token = world.token("dave")
    routes = [
        ("GET", "/orders/o-1"),
        ("GET", "/orders/o-special/invoice"),
        ("GET", "/orders/o-1/invoice"),
        ("DELETE", "/orders/o-1"),
    ]
    scopes = set()
    for method, path in routes * 3:
        result = world.authorizer.authorize(rest_token_event(f"Bearer {token}", method, path))
        assert result.response is not None
        scopes.add(result.response["context"]["policyScope"])
    assert scopes == {"request"}
    assert len(builds) == 1
    world.store.put(Role(name="spare", permissions=()))  # a new config version
    world.clock.advance(60)
    for method, path in routes:
        world.authorizer.authorize(rest_token_event(f"Bearer {token}", method, path))
    assert len(builds) == 2
