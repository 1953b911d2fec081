"""The CLI's error boundary: every command, every kind of bad input or missing thing, answers
with one line on stderr naming the thing and exit 1, never a traceback (issue 10).

The cases are generated from the parser itself: a command added without a row in
:data:`ARGS` fails :func:`test_every_command_is_covered`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from moto import mock_aws

from gatekeeper import cli
from gatekeeper.testing.signing import public_pem
from tests.audit_helpers import SIGNER

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "access.yaml"
SECRET = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8"
WHOLE_KEY = f"gk_0123456789abcdef_{SECRET}"

# Commands that read nothing from outside: nothing can go missing for them.
NO_INPUTS = {("demo",), ("policy", "schema")}
# Commands that never call AWS (files only): their bad input is tested in their own test files.
OFFLINE = {("test",), ("mint",)}


def leaf_commands(
    parser: argparse.ArgumentParser, trail: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        yield trail
        return
    for name, sub in actions[0].choices.items():
        yield from leaf_commands(sub, (*trail, name))


def args_of(command: tuple[str, ...], pem: Path) -> list[str]:
    """The minimal valid arguments of ``command`` (``--actor`` on changes only)."""
    table: dict[tuple[str, ...], list[str]] = {
        ("tables", "create"): [],
        ("archive", "verify"): ["--bucket", "gk-audit", "--public-key", str(pem)],
        ("archive", "query"): ["SELECT count(*) FROM gatekeeper_audit", "--bucket", "gk-audit"],
        ("archive", "report"): ["--bucket", "gk-audit", "--output", "-"],
        ("archive", "replay"): ["--from", "s3://gk-audit/failures/", "--function", "gk-sink"],
        ("archive", "export-security-lake"): [
            "--bucket",
            "gk-audit",
            "--api-activity",
            str(pem.parent / "lake"),
            "--lake-region",
            "us-east-1",
            "--lake-account",
            "123456789012",
        ],
        ("policy", "plan"): ["-f", str(SAMPLE)],
        ("policy", "apply"): ["-f", str(SAMPLE), "--yes", "--actor", "t"],
        ("policy", "export"): [],
        ("keys", "create"): ["--principal", "svc:p", "--actor", "t"],
        ("keys", "list"): [],
        ("keys", "revoke"): ["0123456789abcdef", "--actor", "t"],
        ("keys", "rotate"): ["0123456789abcdef", "--actor", "t"],
        ("certs", "map"): ["--san", "DNS:a.example", "--principal", "svc:p", "--actor", "t"],
        ("certs", "mappings"): [],
        ("certs", "unmap"): ["san-" + "0" * 32, "--actor", "t"],
        ("certs", "revoke"): ["--fingerprint", "ab" * 32, "--actor", "t"],
        ("certs", "revocations"): [],
        ("certs", "unrevoke"): ["sha256-" + "ab" * 32, "--actor", "t"],
        ("signing-keys", "add"): [
            "k1",
            "--public-key",
            str(pem.parent / "caller.pub.pem"),
            "--principal",
            "p",
            "--actor",
            "t",
        ],
        ("signing-keys", "list"): [],
        ("signing-keys", "show"): ["k1"],
        ("signing-keys", "revoke"): ["k1", "--actor", "t"],
        ("signing-keys", "delete"): ["k1", "--actor", "t"],
        ("usage", "show"): ["some-rule", "10.0.0.1"],
        ("usage", "reset"): ["some-rule", "10.0.0.1", "--actor", "t"],
        ("block", "add"): ["203.0.113.9", "--actor", "t"],
        ("block", "list"): [],
        ("block", "remove"): ["203.0.113.9", "--actor", "t"],
        ("test",): ["-f", str(SAMPLE.parent / "access-tests.yaml")],
        ("explain",): ["--principal", "corp:alice", "--tenant", "acme", "GET", "/orders"],
        ("serve",): ["--access", str(SAMPLE), "--port", "1"],  # external tables: checked first
        ("mint",): ["--sub", "alice"],
    }
    return table[command]


ALL = sorted(set(leaf_commands(cli.build_parser())) - NO_INPUTS - OFFLINE)
TABLES = ["--config-table", "nope-config", "--counters-table", "nope-counters"]


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(SIGNER.public_key_pem())
    # a caller's request-signing key (signing-keys add)
    (tmp_path / "caller.pub.pem").write_text(public_pem(Ed25519PrivateKey.generate()))
    return path


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no retries against a closed port
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("GATEKEEPER_AUDIT_LOG", str(tmp_path / "audit.jsonl"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *, code: int = 1) -> str:
    assert cli.main(argv) == code, argv
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gatekeeper: "), err
    return lines[0]


def test_every_command_is_covered(pem: Path) -> None:
    for command in [*ALL, *OFFLINE]:
        args_of(command, pem)  # KeyError: add the new command to args_of


@pytest.mark.parametrize("command", ALL, ids=" ".join)
def test_missing_tables_and_bucket_are_named(
    command: tuple[str, ...], pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if command == ("tables", "create"):
        pytest.skip("creates the missing tables: tested in test_cli_local")
    with mock_aws():
        line = one_line_error(capsys, [*TABLES, *command, *args_of(command, pem)])
    if command[0] == "archive":
        assert "bucket 'gk-audit' not found" in line
    else:
        assert "table 'nope-" in line and "not found" in line
        assert "gatekeeper tables create" in line


@pytest.mark.parametrize("command", ALL, ids=" ".join)
def test_an_unreachable_endpoint_is_named(
    command: tuple[str, ...], pem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    argv = [*command, *args_of(command, pem), *TABLES, "--endpoint-url", endpoint]
    line = one_line_error(capsys, argv)
    assert f"cannot reach {endpoint}" in line


@pytest.mark.parametrize("command", ALL, ids=" ".join)
def test_missing_credentials_are_explained(
    command: tuple[str, ...],
    pem: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    endpoint = f"http://127.0.0.1:{closed_port()}"  # never reached: signing fails first
    argv = ["--endpoint-url", endpoint, *TABLES, *command, *args_of(command, pem)]
    assert "no AWS credentials" in one_line_error(capsys, argv)


@pytest.mark.parametrize("command", ALL, ids=" ".join)
def test_ctrl_c_is_one_line_and_exit_130(
    command: tuple[str, ...],
    pem: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import botocore.client

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", interrupted)
    argv = [*TABLES, *command, *args_of(command, pem)]
    assert one_line_error(capsys, argv, code=130) == "gatekeeper: interrupted"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("roles: [\n", "line 2, column 1"),
        ("roles:\n  a: {}\n  a: {}\n", "duplicate key 'a' (first on line 2)"),
        ("roles: !!python/object/apply:os.system [echo hi]\n", "python/object/apply"),
        ("version: 1\nversion: 1\n", "duplicate key 'version'"),
        ("\tbad: tab\n", "line 1, column 1"),
    ],
    ids=["syntax", "duplicate", "python-tag", "duplicate-top", "tab"],
)
@pytest.mark.parametrize("action", ["plan", "apply"])
def test_bad_yaml_is_one_line_naming_the_file_and_line(
    action: str,
    content: str,
    expected: str,
    dynamodb: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    argv = ["--config-table", "gatekeeper-test-config", "policy", action, "-f", str(bad)]
    line = one_line_error(capsys, [*argv, *(["--actor", "t"] if action == "apply" else [])])
    assert str(bad) in line and expected in line, line


@pytest.mark.parametrize(
    "make", ["missing", "directory", "binary"], ids=["missing", "directory", "binary"]
)
def test_unreadable_files_are_named(
    make: str, dynamodb: object, pem: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input"
    if make == "directory":
        path.mkdir()
    elif make == "binary":
        path.write_bytes(b"\xff\xfe\x00garbage")
    tables_ = ["--config-table", "gatekeeper-test-config"]
    line = one_line_error(capsys, [*tables_, "policy", "plan", "-f", str(path)])
    assert str(path) in line or "UTF-8" in line, line
    line = one_line_error(capsys, ["archive", "verify", "--bucket", "b", "--public-key", str(path)])
    assert str(path) in line, line


def test_a_whole_key_is_refused_without_echoing_its_secret(
    dynamodb: object, capsys: pytest.CaptureFixture[str]
) -> None:
    for action in ("revoke", "rotate"):
        with pytest.raises(SystemExit) as info:  # a usage error (argparse: exit 2)
            cli.main(["keys", action, WHOLE_KEY, "--config-table", "gatekeeper-test-config"])
        assert info.value.code == 2
        out, err = capsys.readouterr()
        assert SECRET not in out + err
        assert "0123456789abcdef" in err and "key id" in err


def test_the_boundary_redacts_any_secret_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gatekeeper.commands import policy

    def boom(_args: object) -> int:
        raise RuntimeError(f"something about {WHOLE_KEY}")

    monkeypatch.setattr(policy, "run_export", boom)
    line = one_line_error(capsys, ["policy", "export", "--config-table", "x"])
    assert SECRET not in line and "unexpected RuntimeError" in line and "--debug" in line
    assert cli.main(["--debug", "policy", "export", "--config-table", "x"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("gatekeeper: error:")


def test_a_bad_public_key_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "key.pem"
    garbage.write_text("not a key")
    line = one_line_error(
        capsys, ["archive", "verify", "--bucket", "b", "--public-key", str(garbage)]
    )
    assert str(garbage) in line and "not a PEM public key" in line


def test_the_installed_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    """The real process, as a user runs it: a YAML error and a missing key file."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles: !!python/object/apply:os.system [echo pwned]\n")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "GATEKEEPER_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
    }
    for argv in (
        ["policy", "plan", "-f", str(bad), "--config-table", "t"],
        ["archive", "verify", "--bucket", "b", "--public-key", str(tmp_path / "none.pem")],
    ):
        done = subprocess.run(  # noqa: S603 - our own entry point
            [sys.executable, "-m", "gatekeeper.cli", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr and "pwned" not in done.stdout
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
