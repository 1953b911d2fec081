"""cdk-nag (AwsSolutions) with zero unacknowledged findings, reasons on all of them; cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.infra.conftest import Synth

CFN_LINT = str(Path(sys.executable).parent / "cfn-lint")
# W3005: CDK writes DependsOn on a function's role next to the GetAtt; redundant, harmless.
CFN_LINT_IGNORE = "W3005"


def test_cdk_nag_has_no_unacknowledged_findings(synth: Synth) -> None:
    # synth would have raised; the report says so explicitly as well
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    violations = [v for p in report["pluginReports"] for v in p.get("violations", [])]
    assert violations == []


def test_every_acknowledgement_has_a_reason(synth: Synth) -> None:
    metadata = json.loads((synth.outdir / "Gatekeeper.metadata.json").read_text())
    acks = {
        rule: reason
        for entries in metadata.values()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for rule, reason in entry["data"].items()
    }
    assert acks, "expected the documented acknowledgements"
    for rule, reason in acks.items():
        assert rule.startswith("Annotation::AwsSolutions-")
        assert len(reason) >= 30, rule
    # no blanket suppression of wildcard findings: IAM5 is acknowledged per finding only
    assert all("[" in r for r in acks if "IAM5" in r or "IAM4" in r)


def test_cfn_lint_passes(synth: Synth) -> None:
    _cfn_lint(synth)


def test_cfn_lint_passes_with_caching_on(synth_variant: Synth) -> None:
    """The caching variant's authorizers (identity sources, TTL) are valid CloudFormation."""
    _cfn_lint(synth_variant)


def _cfn_lint(synth: Synth) -> None:
    result = subprocess.run(
        [
            CFN_LINT,
            "--ignore-checks",
            CFN_LINT_IGNORE,
            "--format",
            "parseable",
            str(synth.template_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
