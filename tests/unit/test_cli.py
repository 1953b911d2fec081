"""The CLI wiring: every registered command parses and has a handler."""

from __future__ import annotations

import pytest

from gatekeeper import cli


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for module in cli.COMMAND_MODULES:
        assert module.rsplit(".", 1)[1] in out


def test_unknown_command_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2


def test_demo_runs_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 0
    assert "17/17 scenarios as expected" in capsys.readouterr().out
