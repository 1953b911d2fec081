"""`gatekeeper test`: access tests against an access file, offline, fast, failing on a change."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatekeeper import access_tests, cli
from gatekeeper.admin.access_file import parse

ROOT = Path(__file__).resolve().parents[2]
ACCESS = ROOT / "examples" / "access.yaml"
TESTS = ROOT / "examples" / "access-tests.yaml"


def test_the_sample_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["test", "-f", str(TESTS), "--access", str(ACCESS)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and " 0 failed" in out


def test_the_access_file_defaults_to_the_tests_files_own(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["test", "-f", str(TESTS)]) == 0


def test_the_sample_covers_every_role_and_claim_mapping() -> None:
    suite = access_tests.parse_suite(TESTS.read_text())
    access = parse(ACCESS.read_text())
    report = access_tests.run(suite, access)
    matched = {r.rule.split("#")[0] for r in report.results if r.rule}
    assert matched >= set(access.roles or {})
    reasons = {r.reason for r in report.results}
    assert {"allowed", "explicit_deny", "no_matching_permission", "tenant_mismatch"} <= reasons
    assert any(c.claims and "groups" in c.claims for c in suite.tests)
    assert any(c.claims and "scope" in c.claims for c in suite.tests)


@pytest.mark.parametrize(
    ("old", "new", "broken"),
    [
        ("    - effect: deny\n", "    - effect: allow\n", "alice may not delete an order"),
        ("      path: /tenants/{tenant}/reports", "      path: /tenants/*/reports", "another"),
        ("  issuer: corp\n", "", "the same group from another issuer"),
        ("    inherits: [public]\n", "", "bob inherits the health check"),
    ],
    ids=["deny-removed", "tenant-isolation", "claim-issuer", "inheritance"],
)
def test_a_rule_change_breaks_the_tests(
    old: str, new: str, broken: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = ACCESS.read_text()
    assert old in text
    mutated = tmp_path / "access.yaml"
    mutated.write_text(text.replace(old, new, 1))
    junit = tmp_path / "junit.xml"
    argv = ["test", "-f", str(TESTS), "--access", str(mutated), "--junit-xml", str(junit)]
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert "FAIL " in out and broken in out and "- expected:" in out and "+ actual:" in out
    assert out.rstrip().splitlines()[-1].startswith("FAILED: ")
    root = ET.parse(junit).getroot()  # noqa: S314 - our own output
    failures = root.findall(".//testcase/failure")
    assert failures and int(root.get("failures", "0")) == len(failures)
    assert any(broken in (f.text or "") for f in failures)


def test_the_diff_names_the_line_and_what_differs(tmp_path: Path) -> None:
    tests = tmp_path / "t.yaml"
    tests.write_text(
        "tests:\n"
        "  - roles: [orders-reader]\n"
        "    request: GET /orders\n"
        "    expect: allow\n"
        "  - name: wrong rule\n"
        "    roles: [orders-clerk]\n"
        "    request: POST /orders\n"
        "    expect: allow\n"
        "    rule: orders-clerk#1\n"
    )
    suite = access_tests.parse_suite(tests.read_text())
    report = access_tests.run(
        suite,
        parse(ACCESS.read_text()),
        lines=access_tests.case_lines(tests.read_text()),
        source="t.yaml",
    )
    assert [r.passed for r in report.results] == [True, False]
    text = access_tests.render(report)
    assert "FAIL wrong rule  (t.yaml:5)" in text
    assert "- expected: allow, rule orders-clerk#1" in text
    assert "+ actual:   allow, reason allowed, rule orders-clerk#0" in text
    assert report.failures[0].problems == ("rule",)


def test_a_thousand_expectations_well_under_a_second(tmp_path: Path) -> None:
    who: list[dict[str, Any]] = [
        {"principal": "corp:alice", "tenant": "acme"},
        {"principal": "corp:bob", "tenant": "globex"},
        {"roles": ["admin"]},
        {"principal": "corp:carol", "claims": {"groups": ["platform-admins"]}},
        {"principal": "x:y", "claims": {"scope": "orders:read"}},
    ]
    requests = ["GET /orders/o-{}", "DELETE /orders/o-{}", "GET /tenants/acme/reports", "PUT /x/{}"]
    cases = [
        {**who[i % len(who)], "request": requests[i % len(requests)].format(i), "expect": "deny"}
        for i in range(1000)
    ]
    text = yaml.safe_dump({"tests": cases})
    access = parse(ACCESS.read_text())
    started = time.process_time()  # CPU time: other processes on a shared machine don't count
    suite, lines = access_tests.parse_suite_with_lines(text)
    report = access_tests.run(suite, access, lines=lines)
    elapsed = time.process_time() - started
    assert len(report.results) == 1000 and report.failures  # some are allowed: that's fine
    assert elapsed < 0.5, elapsed


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "tests:\n  - roles: [r]\n    requst: GET /\n    expect: allow\n",
            "test 1 (line 2).requst",
        ),
        ("tests:\n  - request: GET /\n    expect: allow\n", "say who"),
        ("tests:\n  - roles: [r]\n    request: /orders\n    expect: allow\n", "'GET /path'"),
        ("tests:\n  - roles: [r]\n    request: GET /\n    expect: maybe\n", "expect"),
        ("tests: []\n", "no tests"),
        ("tests: [\n", "line 2"),
        ("- just a list\n", "mapping"),
    ],
    ids=["typo", "who", "request", "expect", "empty", "yaml", "not-mapping"],
)
def test_a_bad_tests_file_is_one_line_naming_it(
    content: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    assert cli.main(["test", "-f", str(bad), "--access", str(ACCESS)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err
    assert str(bad) in lines[0] and expected in lines[0], lines[0]


def test_a_bad_access_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "access.yaml"
    bad.write_text("roles:\n  a: {inherits: [b]}\n")
    assert cli.main(["test", "-f", str(TESTS), "--access", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "unknown role 'b'" in err and len(err.splitlines()) == 1


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert cli.main(["test", "-f", str(TESTS), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["failed"] == 0 and data["passed"] == len(data["results"])


def test_policy_plan_runs_the_tests_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failing test stops `policy plan` before it reads any table (none exists here)."""
    mutated = tmp_path / "access.yaml"
    mutated.write_text(ACCESS.read_text().replace("    - effect: deny\n", "    - effect: allow\n"))
    argv = ["policy", "plan", "-f", str(mutated), "--test", str(TESTS), "--config-table", "none"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "FAIL alice may not delete an order" in err
    assert err.strip().splitlines()[-1].startswith("gatekeeper: error: 2 access test(s)")


def test_policy_plan_with_passing_tests_shows_the_plan(
    dynamodb: object, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["policy", "plan", "-f", str(ACCESS), "--test", str(TESTS)]
    assert cli.main(["--config-table", "gatekeeper-test-config", *argv]) == 0
    out = capsys.readouterr().out
    assert "access tests" in out and "OK: " in out and "Plan: " in out


def test_scopes_cap_what_roles_allow(tmp_path: Path) -> None:
    """A permission with requires_scopes applies only to a credential carrying them."""
    access = parse(
        "roles:\n"
        "  writer:\n"
        "    permissions:\n"
        "    - {methods: [GET], path: /orders}\n"
        "    - {methods: [POST], path: /orders, requires_scopes: [orders:write]}\n"
    )
    suite = access_tests.parse_suite(
        "tests:\n"
        "  - {roles: [writer], scopes: [orders:write], request: POST /orders, expect: allow}\n"
        "  - {roles: [writer], request: POST /orders, expect: deny}\n"
        "  - {principal: idp:u, roles: [writer], claims: {scope: 'a orders:write'},"
        " request: POST /orders, expect: allow, rule: 'writer#1'}\n"
        "  - {roles: [writer], request: GET /orders, expect: allow}\n"
    )
    report = access_tests.run(suite, access)
    assert report.ok, access_tests.render(report)
