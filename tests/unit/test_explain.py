"""`gatekeeper explain` offline: roles and where they came from, the deciding rule, limits, the
policy and what a cached answer does on every other route (pure functions, no AWS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatekeeper import cli
from gatekeeper.access_tests import offline_principal, snapshot_of
from gatekeeper.admin.access_file import parse
from gatekeeper.explain import RequestSpec, concrete_path, explain, render

ROOT = Path(__file__).resolve().parents[2]
ACCESS = ROOT / "examples" / "access.yaml"
SAMPLE = parse(ACCESS.read_text())
SNAPSHOT = snapshot_of(SAMPLE)
API = {"api_id": "a1b2c3d4e5", "stage": "prod"}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert cli.main(["explain", "--access", str(ACCESS), "--json", *argv]) == 0
    data: dict[str, object] = json.loads(capsys.readouterr().out)
    return data


def test_deny_wins_with_every_role_source(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "--principal", "corp:alice", "--tenant", "acme", "DELETE", "/orders/1")
    assert (data["outcome"], data["reason"]) == ("deny", "explicit_deny")
    assert data["decision"] == {
        "allowed": False,
        "reason": "explicit_deny",
        "matched_rule": "orders-clerk#2",
    }
    roles = {(r["role"], r["via"]) for r in data["roles"]}  # type: ignore[attr-defined]
    assert roles == {
        ("orders-clerk", "assignment"),
        ("tenant-analyst", "assignment"),
        ("orders-reader", "inherited"),
        ("public", "inherited"),
    }
    assert [m["rule"] for m in data["matched"]] == ["orders-clerk#2"]  # type: ignore[attr-defined]


def test_claim_mapping_is_named() -> None:
    carol = offline_principal("corp:carol", tenant="acme", claims={"groups": ["platform-admins"]})
    answer = explain(SNAPSHOT, (), carol, RequestSpec("GET", "/admin/users", **API))
    assert answer.outcome == "allow" and answer.decision.matched_rule == "admin#0"
    assert [(r.role, r.via) for r in answer.roles] == [("admin", "claim_mapping")]
    assert "groups=platform-admins (issuer corp)" in answer.roles[0].detail
    other = offline_principal("other:carol", tenant="acme", claims={"groups": ["platform-admins"]})
    assert explain(SNAPSHOT, (), other, RequestSpec("GET", "/admin/users", **API)).roles == ()


def test_the_cached_policy_on_every_route_matches_rbac() -> None:
    """The sample's policies are exact (scope api): every catalogued route, every principal."""
    callers = [
        offline_principal("corp:alice", tenant="acme"),
        offline_principal("corp:bob", tenant="globex"),
        offline_principal("svc:k", tenant="acme", roles=["admin"], auth="api_key"),
        offline_principal("x:y", tenant="acme", claims={"scope": "orders:read"}),
    ]
    for caller in callers:
        answer = explain(SNAPSHOT, SAMPLE.assignments or (), caller, RequestSpec("GET", "/", **API))
        assert answer.policy is not None and answer.policy.scope == "api"
        assert len(answer.routes) == 12
        assert all(route.exact for route in answer.routes), caller.principal_id


def test_tenant_isolation_and_the_tenant_header() -> None:
    alice = offline_principal("corp:alice", tenant="acme")
    grants = SAMPLE.assignments or ()
    other = explain(SNAPSHOT, grants, alice, RequestSpec("GET", "/tenants/globex/reports", **API))
    assert (other.outcome, other.reason) == ("deny", "no_matching_permission")
    own = {(r.method, r.path): r.cached for r in other.routes}
    assert own[("GET", "/tenants/acme/reports")] == "allow"
    header = explain(
        SNAPSHOT, grants, alice, RequestSpec("GET", "/orders", tenant_header="globex", **API)
    )
    assert (header.outcome, header.reason, header.policy) == ("deny", "tenant_mismatch", None)


def test_the_rate_limits_that_apply() -> None:
    alice = offline_principal("corp:alice", tenant="acme")
    answer = explain(
        SNAPSHOT,
        SAMPLE.assignments or (),
        alice,
        RequestSpec("GET", "/tenants/acme/reports", source_ip="203.0.113.9", **API),
    )
    limits = {limit.rule_id: limit for limit in answer.limits}
    assert set(limits) == {"reports-per-analyst", "tenant-per-minute"}
    assert limits["reports-per-analyst"].shadow and limits["reports-per-analyst"].counted
    assert limits["reports-per-analyst"].scope_key == "corp:alice"
    denied = explain(SNAPSHOT, (), alice, RequestSpec("POST", "/login", source_ip="1.2.3.4", **API))
    assert {limit.rule_id for limit in denied.limits} == {"login-per-ip", "tenant-per-minute"}
    assert not any(limit.counted for limit in denied.limits)  # a denial consumes no quota


def test_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "--access", str(ACCESS), "--principal", "corp:bob", "--tenant", "globex"]
    assert cli.main([*argv, "GET", "/orders/o-7/invoice"]) == 0
    out = capsys.readouterr().out
    assert "=> ALLOW (allowed)" in out
    assert "orders-reader    assignment" in out and "public           inherited" in out
    assert "-> orders-reader#0" in out
    assert "guards against non-canonical paths" in out
    assert "every route answered exactly as the authorizer would" in out


def test_concrete_paths() -> None:
    assert concrete_path("/tenants/{tenantId}/reports", "acme") == "/tenants/acme/reports"
    assert concrete_path("/orders/{id}", None) == "/orders/id-1"
    assert concrete_path("/{proxy+}", "t") == "/proxy-1"


def test_an_unverified_token_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gatekeeper.testing import claims_for, mint, rsa_key

    token = mint(claims_for("https://elsewhere/", "a", now=0, subject="z"), rsa_key())
    argv = ["explain", "--access", str(ACCESS), "--token", token, "--state-dir", str(tmp_path)]
    assert cli.main([*argv, "GET", "/health"]) == 0
    out = capsys.readouterr().out
    assert "NOT verified" in out and "unverified:z" in out


def test_the_local_issuers_token_is_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gatekeeper.serve.state import mint_token

    token = mint_token(tmp_path, "carol", tenant="acme", claims={"groups": ["platform-admins"]})
    argv = ["explain", "--access", str(ACCESS), "--token", f"Bearer {token}"]
    assert cli.main([*argv, "--state-dir", str(tmp_path), "GET", "/admin/users"]) == 0
    out = capsys.readouterr().out
    assert "local:carol (jwt)" in out and "NOT verified" not in out
    assert "=> DENY" in out  # the mapping names issuer corp, not local


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["GET", "/x"], "name the caller"),
        (["--principal", "a", "--token", "t", "GET", "/x"], "name the caller"),
        (["--principal", "a"], "METHOD PATH"),
        (["--principal", "a", "FETCH", "/x"], "not a request"),
        (["--principal", "a", "GET", "/a/../b"], "401 non_canonical_path"),
        (["--api-key", "gk_0123456789abcdef_" + "x" * 43, "GET", "/x"], "config table"),
        (["--token", "not-a-jwt", "GET", "/x"], "not a JWT"),
    ],
    ids=["no-caller", "two-callers", "no-request", "verb", "path", "key-offline", "token"],
)
def test_bad_input_is_one_line(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["explain", "--access", str(ACCESS), *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err


def test_a_rule_the_credentials_scopes_do_not_reach_is_named() -> None:
    access = parse(
        "roles:\n"
        "  writer:\n"
        "    permissions:\n"
        "    - {methods: [POST], path: /orders, requires_scopes: [orders:write]}\n"
    )
    snapshot = snapshot_of(access)
    without = offline_principal("svc:k", tenant=None, roles=["writer"], auth="api_key")
    answer = explain(snapshot, (), without, RequestSpec("POST", "/orders"))
    assert (answer.outcome, answer.reason) == ("deny", "no_matching_permission")
    assert [(r.rule, r.missing_scopes) for r in answer.not_applied] == [
        ("writer#0", ("orders:write",))
    ]
    assert "lacks scope orders:write" in render(answer)
    scoped = offline_principal(
        "svc:k", tenant=None, roles=["writer"], auth="api_key", scopes=["orders:write"]
    )
    answer = explain(snapshot, (), scoped, RequestSpec("POST", "/orders"))
    assert answer.outcome == "allow" and answer.not_applied == ()


def test_an_audit_events_request_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--request-id: the caller and request of a recorded decision, explained now."""
    events = [
        {
            "level": "INFO",
            "audit": {
                "time": "2026-12-01T10:00:00+00:00",
                "request_id": "r-1",
                "decision": "deny",
                "reason": "explicit_deny",
                "principal_id": "corp:alice",
                "tenant": "acme",
                "auth_method": "jwt",
                "issuer": "corp",
                "roles": ["orders-clerk", "orders-reader", "public"],
                "api_id": "a1b2c3d4e5",
                "stage": "prod",
                "method": "DELETE",
                "path": "/orders/o-1",
                "source_ip": "1.2.3.4",
            },
        },
        {
            "audit": {
                "time": "2026-12-01T10:00:01+00:00",
                "request_id": "r-2",
                "decision": "unauthorized",
                "reason": "token_expired",
            }
        },
    ]
    log = tmp_path / "audit.jsonl"
    log.write_text("not json\n" + "\n".join(json.dumps(e) for e in events) + "\n")
    base = ["explain", "--access", str(ACCESS), "--audit-log", str(log)]
    assert cli.main([*base, "--request-id", "r-1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit event r-1 at 2026-12-01T10:00:00+00:00: deny (explicit_deny)")
    assert "=> DENY (explicit_deny)" in out and "-> orders-clerk#2" in out
    assert cli.main([*base, "--request-id", "r-2"]) == 1
    assert "401 token_expired" in capsys.readouterr().err
    assert cli.main([*base, "--request-id", "r-3"]) == 1
    assert "no audit event with requestId 'r-3'" in capsys.readouterr().err
