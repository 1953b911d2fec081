"""Dependency bundling without Docker.

The three functions share one Lambda layer: the ``gatekeeper`` package plus its runtime
dependencies from ``pyproject.toml``, installed as manylinux wheels for the functions'
architecture and Python version (``pip install --platform ... --only-binary=:all:``). Each
function's own asset is just its ``functions/<name>/`` directory (the thin handler).

``cdk synth`` bundles for real (it needs PyPI, not Docker). Tests and offline synths skip it
with the standard context key ``aws:cdk:bundling-stacks=[]`` (or ``-c gatekeeper:bundle=false``
through :mod:`gatekeeper_cdk.app_factory`); the asset then holds the plain source tree and a
hash of the inputs, which is enough to check the template but not to deploy.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parents[3]
SRC_DIR = REPO_ROOT / "src"
PACKAGE_DIR = SRC_DIR / "gatekeeper"
FUNCTIONS_DIR = REPO_ROOT / "functions"
PYPROJECT = REPO_ROOT / "pyproject.toml"

PYTHON_VERSION = "3.13"
PIP_PLATFORM = "manylinux2014_aarch64"
ASSET_EXCLUDES = ["__pycache__", "*.pyc", "*.egg-info"]


def runtime_dependencies(pyproject: Path = PYPROJECT) -> list[str]:
    """The ``[project].dependencies`` of the gatekeeper package: what the functions need."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    deps: list[str] = data["project"]["dependencies"]
    return list(deps)


def pip_command(target: Path, requirements: list[str]) -> list[str]:
    """The pip invocation that fetches manylinux aarch64 wheels for the Lambda runtime."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        PIP_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--upgrade",
        "--target",
        str(target),
        *requirements,
    ]


def source_hash() -> str:
    """Hash of everything that goes into the layer, so the asset changes exactly when they do."""
    digest = hashlib.sha256()
    digest.update(f"{PIP_PLATFORM}|{PYTHON_VERSION}|".encode())
    digest.update(PYPROJECT.read_bytes())
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(SRC_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def bundle_layer(output_dir: Path) -> None:
    """Install the runtime dependencies and copy the package into ``output_dir/python``."""
    python_dir = output_dir / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gatekeeper-deps-") as tmp:
        subprocess.run(pip_command(Path(tmp), runtime_dependencies()), check=True)  # noqa: S603
        shutil.rmtree(Path(tmp) / "bin", ignore_errors=True)  # console scripts: host paths
        shutil.copytree(tmp, python_dir, dirs_exist_ok=True)
    shutil.copytree(
        PACKAGE_DIR,
        python_dir / "gatekeeper",
        ignore=shutil.ignore_patterns(*ASSET_EXCLUDES),
        dirs_exist_ok=True,
    )


@jsii.implements(ILocalBundling)
class LocalLayerBundler:
    """``ILocalBundling`` for the dependencies layer: runs pip on this machine, never Docker."""

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        try:
            bundle_layer(Path(output_dir))
        except (OSError, subprocess.CalledProcessError) as exc:
            # Returning False would make CDK fall back to Docker, which we never want.
            raise RuntimeError(f"local bundling of the gatekeeper layer failed: {exc}") from exc
        return True


def layer_code() -> lambda_.Code:
    """The layer asset: bundled locally when bundling is on, the source tree otherwise."""
    return lambda_.Code.from_asset(
        str(SRC_DIR),
        asset_hash=source_hash(),
        asset_hash_type=AssetHashType.CUSTOM,
        exclude=ASSET_EXCLUDES,
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.13"),
            local=LocalLayerBundler(),
        ),
    )


def function_code(name: str) -> lambda_.Code:
    """A function's own code: its ``functions/<name>/`` directory, holding ``handler.py``."""
    return lambda_.Code.from_asset(str(FUNCTIONS_DIR / name), exclude=ASSET_EXCLUDES)
