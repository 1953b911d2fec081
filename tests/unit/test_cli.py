"""The CLI wiring: every registered command parses and has a handler."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from gatekeeper import cli
from gatekeeper.commands._admin import duration, human_duration, when
from gatekeeper.commands._errors import describe, redact


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for module in cli.COMMAND_MODULES:
        assert module.rsplit(".", 1)[1].replace("_", "-") in out  # signing_keys: signing-keys


def test_unknown_command_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2


def test_demo_runs_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 0
    assert "25/25 scenarios as expected" in capsys.readouterr().out


# --- options, durations, times ----------------------------------------------------------------
def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("gatekeeper ")


@pytest.mark.parametrize(
    "argv",
    [
        ["--region", "eu-west-1", "--json", "keys", "list", "--config-table", "t"],
        ["keys", "list", "--region", "eu-west-1", "--json", "--config-table", "t"],
        ["--config-table", "t", "keys", "list", "--region", "eu-west-1", "--json"],
    ],
    ids=["before", "after", "mixed"],
)
def test_global_options_before_or_after_the_command(argv: list[str]) -> None:
    args = cli.build_parser().parse_args(argv)
    assert (args.region, args.json, args.config_table) == ("eu-west-1", True, "t")


def test_an_option_after_the_command_wins_and_an_absent_one_keeps_the_default() -> None:
    args = cli.build_parser().parse_args(["--region", "a", "keys", "list", "--region", "b"])
    assert args.region == "b"
    args = cli.build_parser().parse_args(["keys", "list"])
    assert args.region is None and args.json is False and args.debug is False


@pytest.mark.parametrize(
    "argv",
    [["keys", "list", "--actor", "x"], ["policy", "plan", "-f", "x", "--actor", "x"]],
)
def test_actor_only_on_commands_that_change_something(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(argv)
    assert info.value.code == 2
    args = cli.build_parser().parse_args(["block", "remove", "1.2.3.4", "--actor", "me"])
    assert args.actor == "me"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("90s", 90), ("15m", 900), ("12h", 43_200), ("30d", 2_592_000),
     ("1w", 604_800), ("1h30m", 5400), (" 2D ", 172_800)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15x", "m", "1.5h", "-5", "15m3", "h15"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        duration(text)


def test_times_are_iso_with_a_relative_hint() -> None:
    now = 1_796_165_026.6286762
    assert when(now + 900, now) == "2026-12-01T22:58:46Z (in 15m)"
    assert when(now - 86_400 * 2, now) == "2026-11-29T22:43:46Z (2d ago)"
    assert when(now, now) == "2026-12-01T22:43:46Z (now)"
    assert when(None, now) == "-"
    assert human_duration(3660) == "1h1m"


# --- the key prefix: one rule, the authorizer's -----------------------------------------------
@pytest.mark.parametrize("prefix", ["GK-bad", "g", "1gk", "toolongprefix", "gk_x"])
def test_key_prefixes_the_authorizer_refuses_are_refused(prefix: str) -> None:
    from pydantic import ValidationError

    from gatekeeper.admin.settings import check_key_prefix
    from gatekeeper.config import Settings

    with pytest.raises(ValidationError):  # the authorizer's settings
        Settings.model_validate({"config_table": "cfg", "api_key_prefix": prefix})
    with pytest.raises(ValueError, match="invalid API key prefix"):  # the CLI and admin API
        check_key_prefix(prefix)


def test_the_service_refuses_a_bad_prefix() -> None:
    from gatekeeper.admin.audit import ListAdminAuditEmitter
    from gatekeeper.admin.service import AdminService
    from gatekeeper.store.config_store import InMemoryConfigStore

    with pytest.raises(ValueError, match="GK-bad"):
        AdminService(InMemoryConfigStore(), emitter=ListAdminAuditEmitter(), key_prefix="GK-bad")


# --- errors -----------------------------------------------------------------------------------
def test_secrets_are_redacted_from_error_lines() -> None:
    secret = "A" * 43
    line = redact(f"API key 'gk_0123456789abcdef_{secret}' not found")
    assert secret not in line and "gk_0123456789abcdef_<secret>" in line


def test_client_errors_name_the_resource_of_the_failing_call() -> None:
    from botocore.exceptions import ClientError

    from gatekeeper.commands import _errors

    _errors._remember({"TransactItems": [{"Put": {"TableName": "cfg", "Item": {}}}]})
    error = ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": "Requested resource"}},
        "TransactWriteItems",
    )
    assert describe(error) == (
        "table 'cfg' not found (TransactWriteItems) "
        "(create the tables with: gatekeeper tables create)"
    )
    _errors._remember({"Bucket": "b", "Prefix": "audit/"})
    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2")
    assert describe(denied) == "access denied: ListObjectsV2 on bucket 'b': no"


# --- audit of CLI changes ---------------------------------------------------------------------
class _Kinesis:
    def __init__(self, *, fail: bool, describe: str | None = None) -> None:
        self.fail = fail
        self.describe = describe
        self.described: list[dict[str, str]] = []

    def describe_stream_summary(self, **named: str) -> None:
        from botocore.exceptions import ClientError

        self.described.append(named)
        if self.describe:
            raise ClientError({"Error": {"Code": self.describe}}, "DescribeStreamSummary")

    def put_records(self, **_: object) -> dict[str, object]:
        if self.fail:
            raise ConnectionError("stream unreachable")
        return {"FailedRecordCount": 0, "Records": [{}]}


def _event() -> Any:
    from gatekeeper.admin.audit import AdminChangeEvent

    return AdminChangeEvent(
        time=1.0, actor="me", actor_kind="cli", action="create", resource_type="role",
        resource_id="r", before_digest=None, after_digest="d", config_version=1, source="cli",
    ).to_audit_event()  # fmt: skip


def test_a_failed_stream_put_is_reported_and_the_event_rescued(tmp_path: Path) -> None:
    from gatekeeper.commands._admin import (
        FileAuditEmitter,
        StreamAuditEmitter,
        take_audit_failures,
    )

    good = _Kinesis(fail=False)
    StreamAuditEmitter(good, "audit").emit(_event())
    assert good.described == [{"StreamName": "audit"}]  # checked before any change
    assert take_audit_failures() is None
    rescue = FileAuditEmitter(str(tmp_path / "rescue.jsonl"))
    bad = StreamAuditEmitter(_Kinesis(fail=True), "audit", rescue)
    bad.emit(_event())
    bad.emit(_event())  # every event of a change is still emitted
    failure = take_audit_failures()
    assert failure is not None and "could not be put into stream 'audit'" in failure
    assert f"written to {rescue.path} instead" in failure
    assert len((tmp_path / "rescue.jsonl").read_text().splitlines()) == 2
    assert take_audit_failures() is None  # taken once


def test_a_missing_stream_fails_before_the_change_but_a_put_only_caller_may_proceed() -> None:
    from botocore.exceptions import ClientError

    from gatekeeper.commands._admin import StreamAuditEmitter

    with pytest.raises(ClientError):
        StreamAuditEmitter(_Kinesis(fail=False, describe="ResourceNotFoundException"), "x")
    StreamAuditEmitter(_Kinesis(fail=False, describe="AccessDeniedException"), "x")


def test_the_audit_file_gets_one_json_line_per_change(tmp_path: Path) -> None:
    from gatekeeper.commands._admin import FileAuditEmitter

    path = tmp_path / "deep" / "audit.jsonl"
    emitter = FileAuditEmitter(str(path))
    emitter.emit(_event())
    emitter.emit(_event())
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["audit"]["event_type"] == "admin_change"


# --- the access file and plan checks ----------------------------------------------------------
def test_duplicate_keys_are_refused_unless_allowed() -> None:
    import yaml

    from gatekeeper.admin import access_file

    text = "roles:\n  a: {description: first}\n  a: {description: second}\n"
    with pytest.raises(yaml.YAMLError, match=r"duplicate key 'a' \(first on line 2\)"):
        access_file.parse(text)
    roles = access_file.parse(text, allow_duplicate_keys=True).roles
    assert roles is not None and roles["a"].description == "second"


def test_python_tags_are_refused() -> None:
    import yaml

    from gatekeeper.admin import access_file

    with pytest.raises(yaml.YAMLError, match="python/object/apply"):
        access_file.parse("roles: !!python/object/apply:os.system [echo hi]\n")


def test_emptied_sections_are_reported_with_their_count() -> None:
    from gatekeeper.admin import access_file
    from gatekeeper.admin.plan_checks import emptied_sections
    from gatekeeper.admin.service import Change, Plan

    def delete(kind: str, rid: str) -> Change:
        return Change("delete", kind, rid, ("RBAC", rid), "{}", None)

    plan = Plan((delete("role", "a"), delete("role", "b"), delete("limit", "x")))
    limits = "limits: [{rule_id: y, scope: global, limit: 1, window: second}]\n"
    wanted = access_file.parse("roles: {}\n" + limits)
    assert emptied_sections(wanted, plan) == ["roles: {} deletes all 2 stored role(s)"]
    assert emptied_sections(access_file.parse("roles: {}\n"), Plan(())) == []


def test_permissions_that_match_no_catalogued_route_are_found() -> None:
    from gatekeeper.admin.plan_checks import unmatched_permissions
    from gatekeeper.rbac.model import ApiRoutes, Role

    api = ApiRoutes(
        api_id="a1", stage="prod",
        routes=("GET /orders", "GET /orders/{id}", "ANY /files/{proxy+}", "POST /t/{tenant}/x"),
    )  # fmt: skip
    role = Role.model_validate(
        {
            "name": "r",
            "permissions": [
                {"methods": ["GET"], "path": "/orders"},  # matches
                {"methods": ["GET"], "path": "/orders/42"},  # a literal under {id}
                {"methods": ["DELETE"], "path": "/files/a/b"},  # ANY and a greedy parameter
                {"methods": ["POST"], "path": "/t/{tenant}/x"},
                {"path": "/**"},
                {"methods": ["GET"], "path": "/ordrs"},  # typo
                {"methods": ["DELETE"], "path": "/orders"},  # no such method
                {"methods": ["GET"], "path": "/orders", "api_id": "other"},  # no such API
                {"effect": "deny", "methods": ["GET"], "path": "/nothing"},  # denies: fine
            ],
        }
    )
    assert unmatched_permissions([role], [api]) == [
        "r: GET /ordrs",
        "r: DELETE /orders",
        "r: GET /orders api=other",
    ]
    assert unmatched_permissions([role], []) == []  # no catalog: nothing to check against


def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["keys"], ["block", "add", "1.2.3.4", "--for", "15x"], ["nope"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "--help" in err, err
