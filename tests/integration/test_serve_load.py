"""bench/serve_load.py, small: concurrent requests through `gatekeeper serve`, and the rate
limit exact under that load (exactly `limit` granted, every other request a 403)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "serve_load.py"


def test_the_load_run_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--requests", "150", "--concurrency", "8", "--limit", "20", "--burst", "60"]
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    assert "statuses {200: 150}" in out
    assert "20 granted, 40 rejected (403 rate_limited with Retry-After: True): exact" in out
