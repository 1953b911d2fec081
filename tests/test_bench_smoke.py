# ruff: noqa: RUF001 - the report prints ratios with the multiplication sign
"""The benchmark keeps working: ``bench/run.py --smoke`` runs and reports every row.

Not a timed test: nothing here depends on how fast anything is, only on the report being
complete (each latency row, every goal with a verdict, cold start, sink, limiter, cost).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ROWS = (
    "bare RS256 signature check",
    "bare ES256 signature check",
    "PyJWT `decode` RS256, cached key",
    "PyJWT `decode` ES256, cached key",
    "`authorize()`, first-seen JWT (RS256)",
    "`authorize()`, first-seen JWT (ES256)",
    "`authorize()`, repeated JWT |",
    "`authorize()`, API key",
    "`authorize()`, forbidden route (403)",
    "`authorize()`, rate-limited request (403)",
    "`authorize()`, request-scope policy",
    "`authorize()`, repeated JWT + 1 exact limit rule",
    "`authorize()`, repeated JWT + 1 leased limit rule",
    "naive authorizer",
    "API-key floor: SHA-256 + RBAC lookup",
    "authentication of a repeated JWT: token-cache hit",
    "first-seen JWT ≤ 1.5× PyJWT decode",
    "repeated JWT ≤ 1× one bare signature check",
    "API key ≤ 1.2×",
    "cold import of the handler ≤ 1.3× `import boto3`",
    "≥ 3× faster than the naive authorizer",
    "≥ 3× fewer DynamoDB calls",
    "≤ $0.60 per million decisions",
    "Handler invocation",
    "Cold start",
    "python -X importtime",
    "Audit sink:",
    "Rate limiter",
    "| 5 | 5.00 |",
    "Where the time goes",
    "| Lambda requests |",
    "| CloudWatch Logs ingestion |",
    "| DynamoDB |",
    "| **total** |",
)


def test_smoke_mode_runs_and_reports_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    done = subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = out.read_text()
    missing = [row for row in ROWS if row not in report or row not in done.stdout]
    assert not missing, missing
    goals = [line for line in report.splitlines() if line.endswith(("| met |", "| **missed** |"))]
    assert len(goals) == 7, goals
    assert "smoke" in report  # a smoke report says it is not for quoting
