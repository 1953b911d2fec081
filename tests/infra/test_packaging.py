"""The construct library is installable: build the wheel, install it elsewhere, use it there.

Another CDK app installs ``gatekeeper[cdk]`` and imports ``gatekeeper_cdk``; this builds the
wheel offline from a copy of the sources (``--no-build-isolation``: the dev extra brings a
setuptools that builds wheels), installs it into an empty directory and synthesizes a stack with
``GatekeeperAuthorizer`` from there, away from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "cdk.out", "node_modules", "*.egg-info")

USE_INSTALLED = """
import json, sys
import gatekeeper_cdk
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from gatekeeper_cdk import GatekeeperAuthorizer

stack = Stack(App(), "Consumer")
fn = lambda_.Function.from_function_arn(
    stack, "Fn", "arn:aws:lambda:eu-west-1:111111111111:function:gatekeeper-authorizer")
gk = GatekeeperAuthorizer(stack, "Gk", function=fn, results_cache_ttl=Duration.seconds(60))
api = apigw.RestApi(stack, "Api")
api.root.add_resource("orders").add_method(
    "GET", apigw.MockIntegration(), authorizer=gk.request_authorizer())
(auth,) = Template.from_stack(stack).find_resources("AWS::ApiGateway::Authorizer").values()
print(json.dumps({"file": gatekeeper_cdk.__file__,
                  "identity": auth["Properties"]["IdentitySource"]}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, tree / name)
    shutil.copytree(REPO_ROOT / "src", tree / "src", ignore=IGNORE)
    shutil.copytree(REPO_ROOT / "infra", tree / "infra", ignore=IGNORE)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(dist),
            str(tree),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = dist.glob("gatekeeper-*.whl")
    return built


def test_wheel_holds_runtime_and_construct_packages(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "gatekeeper/__init__.py",
        "gatekeeper/py.typed",
        "gatekeeper_cdk/__init__.py",
        "gatekeeper_cdk/authorizer_construct.py",
        "gatekeeper_cdk/py.typed",
    ):
        assert expected in names, expected
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"gatekeeper", "gatekeeper_cdk", wheel.name.split("-py3")[0] + ".dist-info"}


def test_another_cdk_app_can_install_and_use_the_construct(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}  # ahead of the checkout's editable install
    result = subprocess.run(
        [sys.executable, "-c", USE_INSTALLED],
        cwd=tmp_path,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).is_relative_to(site)  # the installed copy, not infra/cdk
    assert out["identity"] == (
        "method.request.header.Authorization,method.request.header.x-tenant-id"
    )
