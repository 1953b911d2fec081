"""Shared fixtures: moto DynamoDB, a local JWKS server, a seeded authorizer with a fake clock."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from moto import mock_aws

from gatekeeper.audit.emit import ListAuditEmitter
from gatekeeper.authorizer import Authorizer
from gatekeeper.clock import FakeClock
from gatekeeper.config import Settings
from gatekeeper.rate_limit.counters import DynamoCounterStore
from gatekeeper.store import tables
from gatekeeper.store.config_store import DynamoConfigStore
from gatekeeper.testing import LocalJwksServer, SigningKey, claims_for, mint, public_jwks, rsa_key
from gatekeeper.testing.sample_access import SampleKeys, seed
from tests.published_events import REQUIRE_ENV, SamEvents, Unobtainable, sam_cli_wheel

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ISSUER = "https://login.example.com/"
AUDIENCE = "orders-api"
TABLE = "gatekeeper-test-config"
COUNTERS = "gatekeeper-test-counters"
LOCAL_FETCH_TIMEOUT = 5.0
"""The JWKS/discovery timeout of tests that fetch from 127.0.0.1 and are not about timeouts:
generous, because the suite must pass under CPU contention (tools/stress-suite), where a 0.5 s
deadline for a local fetch once was not enough."""
FAST = 3.0
"""Wall-time bound of a "fails fast" check (a deadline of a fraction of a second against a
server or resolver that would take 10 s or more): loose enough for a contended machine."""


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account, whatever the developer's environment holds."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "GatekeeperTest",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return rsa_key("test-2026")


@pytest.fixture
def jwks_server(signing_key: SigningKey) -> Iterator[LocalJwksServer]:
    with LocalJwksServer(public_jwks(signing_key)) as server:
        yield server


@pytest.fixture
def dynamodb() -> Iterator[DynamoDBClient]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**tables.table_definition(TABLE))  # type: ignore[arg-type]
        client.create_table(**tables.counters_table_definition(COUNTERS))  # type: ignore[arg-type]
        yield client


def issuer_settings(jwks_uri: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "corp",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "jwks_uri": jwks_uri,
            "jwks_timeout_seconds": LOCAL_FETCH_TIMEOUT,
        }
    ]


@dataclass
class World:
    """A seeded, warm-able authorizer and everything needed to drive it."""

    authorizer: Authorizer
    store: DynamoConfigStore
    client: DynamoDBClient
    clock: FakeClock
    audit: ListAuditEmitter
    keys: SampleKeys
    signing_key: SigningKey
    jwks: LocalJwksServer

    def token(self, subject: str = "alice", *, key: SigningKey | None = None, **claims: Any) -> str:
        extra = {"tenant": "acme", **claims}
        return mint(
            claims_for(ISSUER, AUDIENCE, now=self.clock(), subject=subject, extra=extra),
            key or self.signing_key,
        )


def make_world(
    client: DynamoDBClient,
    jwks: LocalJwksServer,
    key: SigningKey,
    *,
    counters: bool = False,
    **settings: Any,
) -> World:
    clock = FakeClock(start=float(int(time.time())))
    store = DynamoConfigStore(client, TABLE)
    keys = seed(store, now=clock())
    audit = ListAuditEmitter()
    config = Settings.model_validate(
        {"config_table": TABLE, "issuers": issuer_settings(jwks.uri), **settings}
    )
    authorizer = Authorizer.from_settings(
        config,
        logger=Logger(service="gatekeeper-test"),
        store=store,
        counters=DynamoCounterStore(client, COUNTERS) if counters else None,
        emitter=audit,
        clock=clock,
    )
    return World(authorizer, store, client, clock, audit, keys, key, jwks)


@pytest.fixture
def world(dynamodb: DynamoDBClient, jwks_server: LocalJwksServer, signing_key: SigningKey) -> World:
    return make_world(dynamodb, jwks_server, signing_key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(argv: list[str], port: int, name: str) -> Iterator[str]:
    """Start a local server process and wait until it accepts connections."""
    process = subprocess.Popen(  # noqa: S603 - fixed arguments of our own choosing
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"{name} did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server process on 127.0.0.1 (concurrency tests, the CLI's --endpoint-url)."""
    port = _free_port()
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _server(argv, port, "moto server") as endpoint:
        yield endpoint


DYNALITE = Path(__file__).resolve().parents[1] / "tools" / "dynalite"


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    """dynalite (npm), a second DynamoDB implementation, installed from the lock file on first
    use; validates requests the way DynamoDB does, so the limiter is not tested on moto alone."""
    binary = DYNALITE / "node_modules" / ".bin" / "dynalite"
    npm = shutil.which("npm")
    if not binary.exists():
        if npm is None:
            if os.environ.get("GATEKEEPER_REQUIRE_DYNALITE"):  # CI: never skip exactness
                pytest.fail("dynalite needs Node.js and npm (GATEKEEPER_REQUIRE_DYNALITE is set)")
            pytest.skip("dynalite needs Node.js and npm (not on this machine)")
        subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
            [npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=DYNALITE, check=True
        )
    port = _free_port()
    with _server([str(binary), "--port", str(port)], port, "dynalite") as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def sam() -> SamEvents:
    """AWS's published sample events (the aws-sam-cli wheel's templates), downloaded once like
    dynalite (CI must not skip)."""
    try:
        return SamEvents(sam_cli_wheel())
    except Unobtainable as exc:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{exc} ({REQUIRE_ENV} is set)")
        pytest.skip(f"AWS's published sample events are not available offline: {exc}")
