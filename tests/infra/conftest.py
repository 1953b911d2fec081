"""Synthesize the CDK app once per session (in-process, bundling skipped, cdk-nag on).

The app lives in ``infra/cdk`` (not an installed package): put it on ``sys.path``. These tests
need the ``cdk`` extra (README command 2 installs it) and Node; without aws-cdk-lib they are
skipped locally but fail in CI.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_DIR = REPO_ROOT / "infra" / "cdk"
if str(CDK_DIR) not in sys.path:
    sys.path.insert(0, str(CDK_DIR))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20,21,22,23,24")

if os.environ.get("CI"):
    import aws_cdk  # noqa: F401  - CI must have the cdk extra: fail, never skip
else:
    pytest.importorskip(
        "aws_cdk", reason="the cdk extra is not installed (pip install -e '.[cdk]')"
    )


@dataclass(frozen=True)
class Synth:
    outdir: Path
    template: dict[str, Any]
    stack: Any

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]  # type: ignore[no-any-return]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})  # type: ignore[no-any-return]

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{self.stack.stack_name}.template.json"


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    from gatekeeper_cdk.app_factory import SKIP_BUNDLING, build_app

    app, stack = build_app({**SKIP_BUNDLING, **(context or {})}, outdir=str(outdir))
    app.synth()  # cdk-nag's AwsSolutions plugin runs here: any unacknowledged finding raises
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    return Synth(outdir=outdir, template=template, stack=stack)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The default app, as ``cdk synth`` builds it (minus bundling)."""
    return synthesize(tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def synth_variant(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Caching on (TTL 300 with identity sources) and a 30-day per-object Object Lock retention."""
    return synthesize(
        tmp_path_factory.mktemp("cdk-variant"),
        {"gatekeeper:cacheTtl": "300", "gatekeeper:objectLockDays": "30"},
    )
