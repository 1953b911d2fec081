"""``archive replay --function`` comes from the stack outputs (``AuditSinkFunctionName``) when
neither the flag nor ``GATEKEEPER_AUDIT_SINK_FUNCTION`` names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gatekeeper.cli import build_parser
from gatekeeper.commands._admin import apply_stack_outputs


def _outputs(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    outputs = {"ConfigTableName": "cfg", "AuditSinkFunctionName": "Gatekeeper-AuditSink-1"}
    path.write_text(json.dumps({"Gatekeeper": outputs}))
    return path


def _replay(*extra: str) -> list[str]:
    return ["archive", "replay", "--from", "s3://failed-batches/", *extra]


def test_the_sink_function_comes_from_the_stack_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEKEEPER_AUDIT_SINK_FUNCTION", raising=False)
    args = build_parser().parse_args(["--stack-outputs", str(_outputs(tmp_path)), *_replay()])
    apply_stack_outputs(args)
    assert args.function == "Gatekeeper-AuditSink-1"


def test_a_named_function_wins_over_the_stack_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEKEEPER_AUDIT_SINK_FUNCTION", raising=False)
    outputs = str(_outputs(tmp_path))
    args = build_parser().parse_args(["--stack-outputs", outputs, *_replay("--function", "mine")])
    apply_stack_outputs(args)
    assert args.function == "mine"
