"""The policy builder: the cached policy must answer every route as RBAC does, or never over-grant.

The reference is always :func:`gatekeeper.rbac.evaluator.evaluate`; the policy is judged by
:func:`iam_evaluate` under both readings of ``*`` (crossing ``/`` or not), on concrete sample
paths chosen here, independently of the builder's own (exact) check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import product
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatekeeper import route_check
from gatekeeper.arn import ExecuteApiArn
from gatekeeper.canonical_path import NON_CANONICAL_GLOBS
from gatekeeper.iam_simulator import iam_evaluate
from gatekeeper.policy_builder import PolicyResult, build_policy, policy_size
from gatekeeper.rbac.evaluator import Grant, evaluate
from gatekeeper.rbac.model import HTTP_METHODS, Permission, parse_route, split_path
from gatekeeper.responses import deny_response, http_simple_response, rest_response

API = "abcdef1234"
OTHER_API = "otherapi1"
STAGE = "prod"
ACCOUNT_PREFIX = "arn:aws:execute-api:us-east-1:123456789012"
BASE = f"{ACCOUNT_PREFIX}:{API}/{STAGE}"
INVOKE = "execute-api:Invoke"
READINGS = (True, False)  # ``*`` crosses ``/`` (IAM's rule), or stays in one segment

CATALOG = (
    "GET /",
    "GET /public/health",
    "GET /orders",
    "POST /orders",
    "GET /orders/{id}",
    "PUT /orders/{id}",
    "DELETE /orders/{id}",
    "GET /orders/{id}/invoice",
    "GET /orders/{id}/items/{itemId}",
    "GET /admin/users",
    "POST /admin/users/{userId}/disable",
    "GET /tenants/{tenantId}/orders",
    "GET /tenants/{tenantId}/orders/{id}",
    "POST /tenants/{tenantId}/orders",
    "GET /reports/{year}/{month}",
    "ANY /files/{path+}",
)
CATALOG_WITH_PROXY = (*CATALOG, "ANY /{proxy+}")

# Sample values: generic ones, and ones equal to literals somewhere (where glob and RBAC differ).
VALUES = ("1", "o-1001", "gk-sample", "o-special", "acme", "globex", "admin", "orders", "invoice")
GREEDY_VALUES = ("x", "orders", "1", "admin", "invoice")


# --- helpers -------------------------------------------------------------------------------------
def allow(path: str, *methods: str, **kw: Any) -> Permission:
    return Permission(path=path, methods=methods or ("*",), **kw)


def deny(path: str, *methods: str, **kw: Any) -> Permission:
    return Permission(effect="deny", path=path, methods=methods or ("*",), **kw)


def as_grants(perms: Sequence[Permission]) -> list[Grant]:
    return [Grant(f"role#{i}", p) for i, p in enumerate(perms)]


def request(method: str, path: str, *, api: str = API, stage: str = STAGE) -> ExecuteApiArn:
    return ExecuteApiArn.parse(f"{ACCOUNT_PREFIX}:{api}/{stage}/{method}/{path[1:]}")


def resource(verb: str, path: str, base: str = BASE) -> str:
    return f"{base}/{verb}/{path[1:]}"


def policy(*statements: tuple[str, str | list[str]], action: Any = INVOKE) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": e, "Action": action, "Resource": r} for e, r in statements],
    }


def route_paths(route: str) -> Iterator[str]:
    """Concrete paths of a route: every combination of the sample values."""
    _, path = parse_route(route)
    options: list[Sequence[str]] = []
    for seg in split_path(path):
        if seg.endswith("+}"):
            options.append(
                ["/".join(p) for n in (1, 2, 3) for p in product(GREEDY_VALUES, repeat=n)]
            )
        elif seg.startswith("{"):
            options.append(VALUES)
        else:
            options.append((seg,))
    for combo in product(*options):
        yield "/" + "/".join(combo)


def resources(result: PolicyResult) -> dict[str, list[str]]:
    """The statements' resources, without the non-canonical-path Denies every Allow carries."""
    found: dict[str, list[str]] = {}
    for statement in result.document["Statement"]:
        kept = [r for r in statement["Resource"] if r.split("/", 2)[-1] not in NON_CANONICAL_GLOBS]
        if kept:
            found[statement["Effect"]] = kept
    return found


def assert_well_formed(result: PolicyResult, base: str = BASE, max_bytes: int = 6144) -> None:
    """What API Gateway needs and what the design promises, whatever the path taken."""
    doc = result.document
    assert doc["Version"] == "2012-10-17"
    effects = [s["Effect"] for s in doc["Statement"]]
    assert effects, "a policy needs at least one statement"
    assert len(effects) == len(set(effects)), "at most one Allow and one Deny statement"
    assert policy_size(doc) <= max_bytes
    for statement in doc["Statement"]:
        assert statement["Action"] == INVOKE
        assert statement["Resource"], "empty resource lists are rejected"
        assert len(statement["Resource"]) == len(set(statement["Resource"]))
        for res in statement["Resource"]:
            assert res.startswith(base + "/")
            rest = res[len(base) + 1 :]
            # ``*`` in the verb slot would match across slots: only ``{base}/*`` may use it (and
            # the Denies of non-canonical paths, whose point is to match at any depth)
            if rest in NON_CANONICAL_GLOBS:
                assert statement["Effect"] == "Deny"
                continue
            assert rest == "*" or rest.split("/")[0] in HTTP_METHODS
    allowed = [r for s in doc["Statement"] if s["Effect"] == "Allow" for r in s["Resource"]]
    if any("*" in r for r in allowed):  # an exact ARN cannot match a non-canonical path
        denied = {r for s in doc["Statement"] if s["Effect"] == "Deny" for r in s["Resource"]}
        assert {f"{base}/{g}" for g in NON_CANONICAL_GLOBS} <= denied


def assert_matches_rbac(
    result: PolicyResult,
    grants: Sequence[Grant],
    tenant: str | None,
    routes: Sequence[str],
    *,
    api: str = API,
    stage: str = STAGE,
) -> None:
    """Never over-grants on any route; with scope "api", answers exactly like RBAC.

    Under the route's own verbs: API Gateway never invokes the authorizer, nor applies a cached
    policy, for a (verb, route) pair that does not exist.
    """
    applicable = [g for g in grants if g.permission.applies_to(api, stage)]
    base = f"{ACCOUNT_PREFIX}:{api}/{stage}"
    doc = result.document
    for route in routes:
        route_verb = parse_route(route)[0]
        for path in route_paths(route):
            for verb in HTTP_METHODS if route_verb == "ANY" else (route_verb,):
                expected = evaluate(applicable, verb, path, tenant).allowed
                for slashed in ("", "/") if path != "/" else ("",):
                    arn = resource(verb, path + slashed, base)
                    for crosses in READINGS:
                        got = iam_evaluate(doc, arn, star_crosses_slash=crosses) == "allow"
                        assert expected or not got, f"over-grant: {verb} {path}{slashed} {crosses}"
                        if result.scope == "api" and not slashed:
                            assert got == expected, f"{verb} {path} ({crosses}): {doc}"


# --- iam_evaluate --------------------------------------------------------------------------------
def test_explicit_deny_wins_over_allow() -> None:
    doc = policy(("Allow", f"{BASE}/*"), ("Deny", f"{BASE}/GET/admin/*"))
    assert iam_evaluate(doc, resource("GET", "/admin/users")) == "deny"
    assert iam_evaluate(doc, resource("GET", "/orders")) == "allow"


def test_nothing_matching_is_an_implicit_deny() -> None:
    doc = policy(("Allow", resource("GET", "/orders")))
    assert iam_evaluate(doc, resource("POST", "/orders")) == "implicit_deny"
    assert iam_evaluate(doc, resource("GET", "/orders/1")) == "implicit_deny"


def test_star_matches_across_slashes() -> None:
    doc = policy(("Allow", f"{BASE}/GET/orders/*"))
    assert iam_evaluate(doc, resource("GET", "/orders/1")) == "allow"
    assert iam_evaluate(doc, resource("GET", "/orders/1/invoice")) == "allow"
    assert iam_evaluate(doc, resource("GET", "/orders/")) == "allow"  # ``*`` matches nothing too
    assert iam_evaluate(doc, resource("GET", "/orders")) == "implicit_deny"


def test_star_in_the_verb_slot_reaches_into_the_path() -> None:
    doc = policy(("Allow", f"{BASE}/*/public"))
    assert iam_evaluate(doc, resource("GET", "/admin/public")) == "allow"
    assert iam_evaluate(doc, resource("GET", "/admin/public"), star_crosses_slash=False) == (
        "implicit_deny"
    )
    assert iam_evaluate(doc, resource("GET", "/public"), star_crosses_slash=False) == "allow"


def test_trailing_star_crosses_slashes_in_both_readings() -> None:
    doc = policy(("Allow", f"{BASE}/GET/orders/*"))
    for crosses in READINGS:
        assert iam_evaluate(doc, resource("GET", "/orders/1/x"), star_crosses_slash=crosses) == (
            "allow"
        )


def test_glob_without_slash_matches_a_longer_name() -> None:
    doc = policy(("Allow", f"{BASE}/GET/orders*"))
    assert iam_evaluate(doc, resource("GET", "/orders-export")) == "allow"


def test_question_mark_is_one_character() -> None:
    doc = policy(("Allow", f"{BASE}/GET/orders/?"))
    assert iam_evaluate(doc, resource("GET", "/orders/7")) == "allow"
    assert iam_evaluate(doc, resource("GET", "/orders/77")) == "implicit_deny"
    assert iam_evaluate(doc, resource("GET", "/orders/")) == "implicit_deny"


def test_resource_lists_and_a_single_statement_object() -> None:
    doc = {
        "Statement": {
            "Effect": "Allow",
            "Action": INVOKE,
            "Resource": [resource("GET", "/a"), resource("GET", "/b")],
        }
    }
    assert iam_evaluate(doc, resource("GET", "/b")) == "allow"
    assert iam_evaluate(doc, resource("GET", "/c")) == "implicit_deny"


@pytest.mark.parametrize(
    ("action", "applies"),
    [
        (INVOKE, True),
        ("execute-api:*", True),
        ("*", True),
        ("EXECUTE-API:invoke", True),
        (["s3:GetObject", "execute-api:Invoke"], True),
        ("execute-api:ManageConnections", False),
        ("s3:*", False),
    ],
)
def test_action_matching(action: Any, applies: bool) -> None:
    doc = policy(("Allow", f"{BASE}/*"), action=action)
    expected = "allow" if applies else "implicit_deny"
    assert iam_evaluate(doc, resource("GET", "/orders")) == expected


def test_not_resource_and_not_action() -> None:
    doc = {
        "Statement": [
            {"Effect": "Allow", "Action": INVOKE, "NotResource": f"{BASE}/*/admin/*"},
            {"Effect": "Deny", "NotAction": "s3:*", "Resource": resource("GET", "/orders/9")},
        ]
    }
    assert iam_evaluate(doc, resource("GET", "/orders/1")) == "allow"
    assert iam_evaluate(doc, resource("GET", "/admin/x")) == "implicit_deny"
    assert iam_evaluate(doc, resource("GET", "/orders/9")) == "deny"


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("*", True),
        ("arn:aws:execute-api:*", True),  # a trailing ``*`` may cross colons
        (f"arn:aws:execute-api:*:*:{API}/{STAGE}/GET/orders", True),
        (f"arn:aws:execute-api:us-*:123456789012:{API}/*", True),
        (f"arn:aws:execute-api:eu-*:123456789012:{API}/*", False),
        (f"arn:aws:execute-api:us-east-1:123456789012:{OTHER_API}/*", False),
        (f"arn:aws:execute-api:us-east-1:123456789012:{API}/dev/*", False),
    ],
)
def test_arn_fields(pattern: str, matches: bool) -> None:
    got = iam_evaluate(policy(("Allow", pattern)), resource("GET", "/orders"))
    assert got == ("allow" if matches else "implicit_deny")


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"Statement": "nope"},
        {"Statement": [{"Effect": "allow", "Action": INVOKE, "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": INVOKE}]},
        {"Statement": [{"Effect": "Allow", "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": INVOKE, "Resource": "*", "NotResource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": INVOKE, "Resource": 3}]},
        {"Statement": [{"Effect": "Allow", "Action": INVOKE, "Resource": "*", "Condition": {}}]},
    ],
)
def test_documents_it_cannot_judge_raise(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        iam_evaluate(doc, resource("GET", "/orders"))


# --- translation (an empty catalog shows the raw translation) ------------------------------------
@pytest.mark.parametrize(
    ("perms", "tenant", "allowed", "denied"),
    [
        ([allow("/orders/{id}", "GET")], None, ["GET/orders/*"], []),
        ([allow("/orders/*/items", "GET")], None, ["GET/orders/*/items"], []),
        ([allow("/orders/**", "GET")], None, ["GET/orders", "GET/orders/*"], []),
        ([allow("/**", "GET")], None, ["GET/*"], []),  # ``GET/*`` covers the root ``GET/``
        ([allow("/", "GET")], None, ["GET/"], []),
        ([allow("/**")], None, ["*"], []),
        ([allow("/orders")], None, [f"{v}/orders" for v in sorted(HTTP_METHODS)], []),
        ([allow("/t/{tenant}/x", "GET")], "acme", ["GET/t/acme/x"], []),
        ([allow("/t/{tenant}/x", "GET")], None, [], ["*"]),  # nothing allowed: deny all
        ([allow("/t/{tenant}/x", "GET")], "ac*me", [], ["*"]),  # unsafe tenant: no glob
        ([allow("/**"), deny("/orders/{id}", "DELETE")], None, ["*"], ["DELETE/orders/*"]),
        ([allow("/**"), deny("/orders", "POST")], None, ["*"], ["POST/orders", "POST/orders/"]),
        ([allow("/**"), deny("/t/{tenant}", "GET")], "ac*me", ["*"], ["GET/t/*"]),
        (
            [allow("/orders/**", "GET"), allow("/orders/**", "GET"), allow("/orders/{id}", "GET")],
            None,
            ["GET/orders", "GET/orders/*"],
            [],
        ),
    ],
)
def test_translation(
    perms: list[Permission], tenant: str | None, allowed: list[str], denied: list[str]
) -> None:
    result = build_policy(
        arn=request("GET", "/zz"), grants=as_grants(perms), tenant=tenant, routes=()
    )
    assert result.scope == "api"
    got = resources(result)
    assert sorted(got.get("Allow", [])) == sorted(f"{BASE}/{r}" for r in allowed)
    assert sorted(got.get("Deny", [])) == sorted(f"{BASE}/{r}" for r in denied)
    assert_well_formed(result)


# --- the core property over a sample API ---------------------------------------------------------
PRINCIPALS: dict[str, tuple[list[Permission], str | None]] = {
    "reader": ([allow("/orders/**", "GET")], None),
    "clerk": (
        [allow("/orders/{id}", "GET"), allow("/orders", "POST"), deny("/orders/{id}", "DELETE")],
        None,
    ),
    "admin": ([allow("/**"), deny("/admin/**")], None),
    "tenant_user": ([allow("/tenants/{tenant}/**"), allow("/public/health", "GET")], "acme"),
    "stage_bound": (
        [allow("/orders/**", "GET", api_id=API, stage=STAGE), allow("/**", api_id=OTHER_API)],
        None,
    ),
    # IAM cannot allow ``GET /orders/o-special/invoice`` while denying the other invoices
    "inexpressible": ([allow("/orders/*", "GET"), allow("/orders/o-special/invoice", "GET")], None),
    "nobody": ([], None),
}
EXPECTED_SCOPE = {
    "reader": ("api", "api"),
    # with ``ANY /{proxy+}``, ``GET /orders/1/x`` is reachable: ``GET/orders/*/*`` denies it
    "clerk": ("api", "api"),
    "admin": ("api", "api"),
    "tenant_user": ("api", "api"),
    "stage_bound": ("api", "api"),
    "inexpressible": ("request", "request"),
    "nobody": ("api", "api"),
}
REQUESTS = (("GET", "/orders/o-1001"), ("POST", "/orders"), ("GET", "/tenants/acme/orders"))


@pytest.mark.parametrize("name", sorted(PRINCIPALS))
@pytest.mark.parametrize("catalog", [CATALOG, CATALOG_WITH_PROXY], ids=["routes", "with-proxy"])
def test_policy_answers_every_route_like_rbac(name: str, catalog: tuple[str, ...]) -> None:
    perms, tenant = PRINCIPALS[name]
    grants = as_grants(perms)
    for method, path in REQUESTS:
        result = build_policy(
            arn=request(method, path), grants=grants, tenant=tenant, routes=catalog
        )
        applicable = [g for g in grants if g.permission.applies_to(API, STAGE)]
        assert result.allows_request == evaluate(applicable, method, path, tenant).allowed
        assert_well_formed(result)
        if (method, path) == REQUESTS[0]:
            assert result.scope == EXPECTED_SCOPE[name][catalog is CATALOG_WITH_PROXY]
            assert_matches_rbac(result, grants, tenant, catalog)


def test_clerk_policy_denies_what_the_globs_would_leak() -> None:
    perms, _ = PRINCIPALS["clerk"]
    result = build_policy(
        arn=request("GET", "/orders/1"), grants=as_grants(perms), tenant=None, routes=CATALOG
    )
    got = resources(result)
    assert f"{BASE}/GET/orders/*" in got["Allow"]
    assert f"{BASE}/GET/orders/*/invoice" in got["Deny"]  # the nested route
    assert f"{BASE}/GET/orders/" in got["Deny"]  # ``/orders/`` would pass as ``/orders``
    assert iam_evaluate(result.document, resource("GET", "/orders/1/invoice")) == "deny"


def test_permissions_for_another_api_or_stage_are_ignored() -> None:
    perms, _ = PRINCIPALS["stage_bound"]
    grants = as_grants(perms)
    dev = build_policy(
        arn=request("GET", "/orders/1", stage="dev"), grants=grants, tenant=None, routes=CATALOG
    )
    assert not dev.allows_request
    assert resources(dev) == {"Deny": [f"{BASE.removesuffix('/prod')}/dev/*"]}
    other = build_policy(
        arn=request("GET", "/orders/1", api=OTHER_API, stage="dev"),
        grants=grants,
        tenant=None,
        routes=CATALOG,
    )
    base = f"{ACCOUNT_PREFIX}:{OTHER_API}/dev"
    assert other.scope == "api"
    assert resources(other) == {"Allow": [f"{base}/*"]}
    assert_matches_rbac(other, grants, None, CATALOG, api=OTHER_API, stage="dev")


def test_tenant_scoped_policy_names_only_the_callers_tenant() -> None:
    perms, _ = PRINCIPALS["tenant_user"]
    result = build_policy(
        arn=request("GET", "/tenants/acme/orders"),
        grants=as_grants(perms),
        tenant="acme",
        routes=CATALOG,
    )
    assert iam_evaluate(result.document, resource("GET", "/tenants/globex/orders")) != "allow"
    assert iam_evaluate(result.document, resource("GET", "/tenants/acme/orders/7")) == "allow"


def test_a_deny_that_over_denies_under_one_reading_is_request_scoped() -> None:
    """``GET/a/*/c`` also denies ``/a/x/y/c`` when ``*`` crosses ``/``, which RBAC allows."""
    grants = as_grants([allow("/a/**", "GET"), deny("/a/*/c", "GET")])
    routes = ("GET /a/{x}/c", "GET /a/{x}/{y}/c")
    result = build_policy(arn=request("GET", "/a/1/c"), grants=grants, tenant=None, routes=routes)
    assert result.scope == "request"
    assert not result.allows_request
    assert_matches_rbac(result, grants, None, routes)


def test_nested_wildcards_are_exact_in_both_readings() -> None:
    grants = as_grants([allow("/a/*/c", "GET")])
    routes = ("GET /a/{x}/c", "GET /a/{x}/{y}/c", "GET /a/{x}")
    result = build_policy(arn=request("GET", "/a/1/c"), grants=grants, tenant=None, routes=routes)
    assert result.scope == "api"
    assert_matches_rbac(result, grants, None, routes)


def test_a_deny_that_needs_star_to_cross_slashes_is_backed_by_a_route_deny() -> None:
    """``GET/*/*/invoice`` stops ``/orders/1/2/invoice`` only if ``*`` crosses ``/``."""
    grants = as_grants([allow("/orders/{id}", "GET"), deny("/*/*/invoice", "GET")])
    routes = ("GET /orders/{id}", "GET /orders/{id}/{x}/invoice")
    result = build_policy(
        arn=request("GET", "/orders/1"), grants=grants, tenant=None, routes=routes
    )
    assert result.scope == "api"
    assert f"{BASE}/GET/orders/*/*/invoice" in resources(result)["Deny"]
    assert_matches_rbac(result, grants, None, routes)


# --- without a catalog ---------------------------------------------------------------------------
def test_no_catalog_keeps_exact_globs_and_is_api_scoped() -> None:
    perms, _ = PRINCIPALS["reader"]
    grants = as_grants(perms)
    result = build_policy(arn=request("GET", "/orders/1"), grants=grants, tenant=None, routes=None)
    assert result.scope == "api"
    assert resources(result) == {"Allow": [f"{BASE}/GET/orders", f"{BASE}/GET/orders/*"]}
    assert_matches_rbac(result, grants, None, CATALOG_WITH_PROXY)


def test_no_catalog_denies_where_single_segment_wildcards_reach_deeper() -> None:
    """Without a catalog every path is checked: ``GET/orders/*`` for ``/orders/{id}`` needs a
    Deny of the deeper paths (and of ``/orders/``), then it is exact for every route."""
    perms, _ = PRINCIPALS["clerk"]
    grants = as_grants(perms)
    result = build_policy(arn=request("GET", "/orders/1"), grants=grants, tenant=None, routes=None)
    assert result.scope == "api"
    assert result.allows_request
    got = resources(result)
    assert sorted(got["Allow"]) == [resource("GET", "/orders/*"), resource("POST", "/orders")]
    assert {f"{BASE}/GET/orders/*/*", f"{BASE}/DELETE/orders/*"} <= set(got["Deny"])
    assert_matches_rbac(result, grants, None, CATALOG_WITH_PROXY)


def test_no_catalog_with_an_over_broad_deny_is_request_scoped() -> None:
    grants = as_grants([allow("/orders/**", "GET"), deny("/orders/*/secret", "GET")])
    result = build_policy(arn=request("GET", "/orders/1"), grants=grants, tenant=None, routes=None)
    assert result.scope == "request"
    assert result.allows_request
    assert_matches_rbac(result, grants, None, CATALOG_WITH_PROXY)


def test_no_catalog_denied_request() -> None:
    perms, _ = PRINCIPALS["clerk"]
    result = build_policy(
        arn=request("DELETE", "/orders/1"), grants=as_grants(perms), tenant=None, routes=None
    )
    assert not result.allows_request
    assert iam_evaluate(result.document, resource("DELETE", "/orders/1")) == "deny"


# --- fallbacks -----------------------------------------------------------------------------------
def test_too_large_policy_falls_back_to_the_request() -> None:
    grants = as_grants([allow(f"/p{i}") for i in range(120)])  # 840 resources
    result = build_policy(arn=request("GET", "/p7"), grants=grants, tenant=None, routes=CATALOG)
    assert result.scope == "request"
    assert result.allows_request
    assert resources(result) == {"Allow": [resource("GET", "/p7")]}
    assert_well_formed(result)


def test_max_bytes_is_respected_for_a_policy_that_would_fit_the_default() -> None:
    perms, tenant = PRINCIPALS["admin"]
    grants = as_grants(perms)
    roomy = build_policy(
        arn=request("GET", "/orders"), grants=grants, tenant=tenant, routes=CATALOG
    )
    assert roomy.scope == "api"
    tight = build_policy(
        arn=request("GET", "/orders"), grants=grants, tenant=tenant, routes=CATALOG, max_bytes=600
    )
    assert tight.scope == "request"
    assert tight.allows_request
    assert_well_formed(tight, max_bytes=600)


def test_a_denied_request_falls_back_to_a_deny_of_the_request() -> None:
    grants = as_grants([allow(f"/p{i}") for i in range(120)])
    result = build_policy(arn=request("GET", "/nope"), grants=grants, tenant=None, routes=None)
    assert not result.allows_request
    assert iam_evaluate(result.document, resource("GET", "/nope")) == "deny"
    assert_well_formed(result)


def test_when_nothing_fits_everything_is_denied() -> None:
    result = build_policy(
        arn=request("GET", "/orders/" + "x" * 200),
        grants=as_grants([allow("/orders/*", "GET")]),  # needs the (too long) request ARN
        tenant=None,
        routes=None,
        max_bytes=200,
    )
    assert not result.allows_request  # fail closed
    assert resources(result) == {"Deny": [f"{BASE}/*"]}


def test_a_comparison_too_complex_to_finish_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(route_check, "_MAX_STATES", 1)
    perms, _ = PRINCIPALS["clerk"]
    result = build_policy(
        arn=request("GET", "/orders/1"), grants=as_grants(perms), tenant=None, routes=CATALOG
    )
    assert result.scope == "request"
    assert resources(result) == {"Allow": [resource("GET", "/orders/1")]}


def test_result_is_immutable() -> None:
    result = build_policy(
        arn=request("GET", "/orders"), grants=as_grants([allow("/**")]), tenant=None, routes=None
    )
    result.document["Statement"].clear()
    assert result.document["Statement"]


# --- random rule sets ----------------------------------------------------------------------------
SMALL_ALPHABET = ("a", "b", "t1", "z")
ROUTE_POOL = (
    "GET /",
    "GET /a",
    "POST /a",
    "GET /b",
    "GET /a/{id}",
    "GET /a/{id}/b",
    "GET /b/{x}/{y}",
    "DELETE /a/b/{id}",
    "GET /{t}/a",
    "ANY /a/{rest+}",
    "ANY /{proxy+}",
)
VERBS = ("GET", "POST", "DELETE")
SMALL_PATHS = tuple(  # depth 4 too, where a ``*`` spanning two segments shows
    "/" + "/".join(p)
    for n in range(5)
    for p in product(SMALL_ALPHABET if n < 4 else SMALL_ALPHABET[:3], repeat=n)
)


@st.composite
def permissions(draw: st.DrawFn) -> Permission:
    segments = draw(st.lists(st.sampled_from(["a", "b", "*", "{id}", "{tenant}"]), max_size=3))
    if draw(st.booleans()):
        segments.append("**")
    return Permission(
        path="/" + "/".join(segments),
        methods=draw(st.sampled_from([("*",), ("GET",), ("POST",), ("GET", "POST")])),
        effect=draw(st.sampled_from(["allow", "allow", "deny"])),
    )


def _routed_verbs(routes: Sequence[str] | None, path: str) -> set[str]:
    """The verbs API Gateway would route ``path`` for (every verb and path without a catalog):
    only those requests ever reach the authorizer or a cached policy."""
    if routes is None:
        return set(VERBS)
    segs = split_path(path)
    verbs: set[str] = set()
    for route in routes:
        verb, route_path = parse_route(route)
        pattern = split_path(route_path)
        if pattern and pattern[-1].endswith("+}"):
            fixed, ok = pattern[:-1], len(segs) > len(pattern) - 1
        else:
            fixed, ok = pattern, len(segs) == len(pattern)
        if ok and all(p.startswith("{") or p == s for p, s in zip(fixed, segs, strict=False)):
            verbs |= set(VERBS) if verb == "ANY" else {verb}
    return verbs


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(
    perms=st.lists(permissions(), max_size=5),
    tenant=st.sampled_from([None, "t1", "a"]),
    routes=st.one_of(st.none(), st.lists(st.sampled_from(ROUTE_POOL), unique=True, max_size=6)),
    verb=st.sampled_from(VERBS),
    path=st.sampled_from(SMALL_PATHS),
    slashed=st.booleans(),
)
def test_random_rules_never_over_grant(
    perms: list[Permission],
    tenant: str | None,
    routes: list[str] | None,
    verb: str,
    path: str,
    slashed: bool,
) -> None:
    grants = as_grants(perms)
    asked = path + "/" if slashed and path != "/" else path
    result = build_policy(arn=request(verb, asked), grants=grants, tenant=tenant, routes=routes)
    assert_well_formed(result)

    # the request gets exactly RBAC's answer, under either reading of ``*``
    expected = evaluate(grants, verb, asked, tenant).allowed
    assert result.allows_request == expected
    for crosses in READINGS:
        verdict = iam_evaluate(result.document, resource(verb, asked), star_crosses_slash=crosses)
        assert (verdict == "allow") == expected

    # every other reachable request: never more than RBAC; exactly RBAC when scope is "api"
    doc = result.document
    for sample in SMALL_PATHS:
        for sample_verb in sorted(_routed_verbs(routes, sample)):
            rbac = evaluate(grants, sample_verb, sample, tenant).allowed
            for suffix in ("", "/") if sample != "/" else ("",):
                arn = resource(sample_verb, sample + suffix)
                for crosses in READINGS:
                    got = iam_evaluate(doc, arn, star_crosses_slash=crosses) == "allow"
                    assert rbac or not got, f"over-grant {sample_verb} {sample}{suffix}"
                    if result.scope == "api" and not suffix:
                        assert got == rbac, f"{sample_verb} {sample} ({crosses})"


# --- responses -----------------------------------------------------------------------------------
def _result() -> PolicyResult:
    return build_policy(
        arn=request("GET", "/orders"), grants=as_grants([allow("/**")]), tenant=None, routes=None
    )


def test_rest_response_shape() -> None:
    result = _result()
    context: dict[str, str | int | bool] = {"tenant": "acme", "version": 3, "limited": False}
    response = rest_response("user-1", result, context)
    assert response == {
        "principalId": "user-1",
        "policyDocument": result.document,
        "context": context,
    }
    with_key = rest_response("user-1", result, {}, usage_identifier_key="usage-key")
    assert with_key["usageIdentifierKey"] == "usage-key"


def test_rest_response_needs_a_principal() -> None:
    with pytest.raises(ValueError, match="principalId"):
        rest_response("", _result(), {})


def test_http_simple_response() -> None:
    assert http_simple_response(True, {"tenant": "acme"}) == {
        "isAuthorized": True,
        "context": {"tenant": "acme"},
    }
    assert http_simple_response(False, {})["isAuthorized"] is False


def test_deny_response_denies_the_request_resource() -> None:
    arn = request("GET", "/orders/1")
    response = deny_response("", arn, {"reason": "config_unavailable"})
    assert response["principalId"] == "anonymous"
    assert response["context"] == {"reason": "config_unavailable"}
    assert iam_evaluate(response["policyDocument"], arn.arn) == "deny"


@pytest.mark.parametrize(
    "context",
    [
        {"roles": ["a", "b"]},
        {"claims": {"sub": "x"}},
        {"missing": None},
        {"ratio": 0.5},
        {1: "x"},
    ],
)
def test_context_values_must_be_scalars(context: Mapping[Any, Any]) -> None:
    with pytest.raises(TypeError, match="context"):
        rest_response("user-1", _result(), context)
    with pytest.raises(TypeError, match="context"):
        http_simple_response(True, context)


def test_a_default_route_catalog_is_checked_over_every_path() -> None:
    """An HTTP API whose catalog is only ``$default``: api scope where RBAC can be expressed,
    including the root, which ``ANY /{proxy+}`` alone would not cover."""
    grants = as_grants([allow("/orders/{id}", "GET"), allow("/", "GET")])
    result = build_policy(
        arn=request("GET", "/orders/o-1"), grants=grants, tenant=None, routes=["$default"]
    )
    assert result.scope == "api" and result.allows_request
    assert_matches_rbac(result, grants, None, ["ANY /{proxy+}", "GET /"])
    assert f"{BASE}/GET/orders/*/*" in resources(result)["Deny"]  # the witness Deny
