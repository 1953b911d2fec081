"""Local (Docker-free) bundling of the dependencies layer.

The real bundle needs PyPI and takes a few seconds: it runs only with
``GATEKEEPER_TEST_BUNDLING=1`` (``.ci/run`` sets it for one run of this file).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from gatekeeper_cdk import bundling


def test_pip_targets_lambda_arm64_wheels(tmp_path: Path) -> None:
    cmd = bundling.pip_command(tmp_path, ["pydantic>=2"])
    joined = " ".join(cmd)
    assert "--platform manylinux2014_aarch64" in joined
    assert "--only-binary=:all:" in cmd
    assert f"--python-version {bundling.PYTHON_VERSION}" in joined
    assert "--implementation cp" in joined
    assert cmd[cmd.index("--target") + 1] == str(tmp_path)


def test_runtime_dependencies_come_from_pyproject() -> None:
    data = tomllib.loads(bundling.PYPROJECT.read_text())
    assert bundling.runtime_dependencies() == data["project"]["dependencies"]
    assert not any("moto" in d or "aws-cdk" in d for d in bundling.runtime_dependencies())


def test_runtime_matches_bundled_python_version() -> None:
    from gatekeeper_cdk.stack import RUNTIME

    assert RUNTIME.name == f"python{bundling.PYTHON_VERSION}"


def test_source_hash_is_stable() -> None:
    assert bundling.source_hash() == bundling.source_hash()
    assert len(bundling.source_hash()) == 64


@pytest.mark.skipif(
    os.environ.get("GATEKEEPER_TEST_BUNDLING") != "1",
    reason="real bundling (pip download from PyPI) is opt-in: GATEKEEPER_TEST_BUNDLING=1",
)
def test_real_bundle(tmp_path: Path) -> None:
    bundler = bundling.LocalLayerBundler()
    assert bundler.try_bundle(str(tmp_path)) is True
    python = tmp_path / "python"
    assert (python / "gatekeeper" / "authorizer.py").is_file()
    assert (python / "aws_lambda_powertools").is_dir()
    assert not list(python.rglob("__pycache__"))
    core = list((python / "pydantic_core").glob("_pydantic_core.cpython-*-aarch64-linux-gnu.so"))
    assert core, "pydantic_core must be the manylinux aarch64 build"
    assert f"cpython-{bundling.PYTHON_VERSION.replace('.', '')}" in core[0].name
    size = sum(f.stat().st_size for f in python.rglob("*") if f.is_file())
    assert size < 200 * 1024 * 1024  # unzipped function + layers must stay under 250 MB
