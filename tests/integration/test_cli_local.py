"""Local mode: the CLI against a DynamoDB-compatible server process (moto_server), exactly as the
README's "Use it locally" section says, from creating the tables to minting a key."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import boto3
import pytest

from gatekeeper import cli
from gatekeeper.store.config_store import DynamoConfigStore

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SAMPLE = ROOT / "examples" / "access.yaml"


def readme_local_block() -> list[str]:
    """The shell lines of the first ``bash`` block of the README's "Use it locally" section."""
    text = README.read_text()
    section = text.split("\n## Use it locally", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the section has a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_walk_through_works_verbatim(
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every ``export`` and ``gatekeeper`` line of the section, against the test's server
    (its port instead of 5000, and table names of its own so reruns start clean)."""
    monkeypatch.chdir(ROOT)
    lines = readme_local_block()
    assert any("moto_server" in line for line in lines)
    ran: list[str] = []
    for line in lines:
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            for assignment in words[1:]:
                name, _, value = assignment.partition("=")
                value = value.replace("http://127.0.0.1:5000", moto_endpoint)
                if name.endswith("_TABLE"):
                    value = f"readme-{value}"
                if name == "GATEKEEPER_AUDIT_LOG":
                    value = str(tmp_path / value)
                monkeypatch.setenv(name, value)
        elif words[0].endswith("bin/gatekeeper"):
            code = cli.main(words[1:])
            out, err = capsys.readouterr()
            assert code == 0, (line, out, err)
            ran.append(words[1])
            if words[1:3] == ["keys", "create"]:
                assert "API key (shown once" in out
    assert ran[:3] == ["tables", "policy", "keys"], ran


def test_tables_create_is_idempotent_and_the_cli_works_on_the_new_tables(
    moto_endpoint: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    local = [
        "--endpoint-url", moto_endpoint, "--region", "us-east-1",
        "--config-table", "local-config", "--counters-table", "local-counters",
    ]  # fmt: skip
    audit = ["--audit-log", str(tmp_path / "audit.jsonl")]
    assert cli.main([*local, "tables", "create", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["tables"]
    assert {t["name"]: t["result"] for t in first} == {
        "local-config": "created",
        "local-counters": "created",
    }
    assert cli.main(["tables", "create", *local]) == 0  # again: options after the command
    out = capsys.readouterr().out
    assert "Table local-config: already exists." in out
    assert "Table local-counters: already exists." in out

    assert cli.main([*local, "policy", "apply", "-f", str(SAMPLE), *audit]) == 0
    capsys.readouterr()
    argv = ["keys", "create", "--principal", "svc:local", "--expires-in", "30d", *audit]
    assert cli.main([*local, *argv]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 30d\)", out), out
    assert cli.main([*local, "block", "add", "203.0.113.9", "--for", "15m", *audit]) == 0
    assert "(in 15m)" in capsys.readouterr().out
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    assert DynamoConfigStore(client, "local-config").get_version() == 2


def test_tables_create_needs_both_names(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEKEEPER_COUNTERS_TABLE", raising=False)
    assert cli.main(["tables", "create", "--config-table", "only-one"]) == 1
    assert "--counters-table" in capsys.readouterr().err


def test_the_readme_block_runs_in_a_shell(tmp_path: Path) -> None:
    """The block itself, in bash, in a scratch directory (its own port instead of 5000): the
    server starts, the tables are created, the sample applied and a key minted."""
    import os
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    script = (
        "\n".join(readme_local_block())
        .replace(":5000", f":{port}")
        .replace("-p 5000", f"-p {port}")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GATEKEEPER_"))}
    done = subprocess.run(  # noqa: S603 - the README's own commands
        ["/bin/bash", "-e", "-c", f"trap 'kill $(jobs -p) 2>/dev/null' EXIT\n{script}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Table gatekeeper-config: created." in done.stdout
    assert "API key (shown once, store it now): gk_" in done.stdout
    assert "Traceback" not in done.stderr
    assert (tmp_path / "local-audit.jsonl").read_text().count('"admin_change"') > 1
