"""Warm-path cost of the authorizer, compared with its floor: one RS256 signature check.

Run: ``.venv/bin/python bench/authorizer_bench.py`` (offline: moto + a local JWKS server).
Reports per-request latency (median, p99) for JWT and API-key callers on a warm container, the
cost of a bare PyJWT RS256 verification for comparison, and DynamoDB calls per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3
import jwt
from aws_lambda_powertools import Logger
from moto import mock_aws

from gatekeeper.audit.emit import ListAuditEmitter
from gatekeeper.authorizer import Authorizer
from gatekeeper.config import Settings
from gatekeeper.store import tables
from gatekeeper.store.config_store import DynamoConfigStore
from gatekeeper.testing import LocalJwksServer, claims_for, mint, public_jwks, rsa_key
from gatekeeper.testing.events import http_api_event, rest_token_event
from gatekeeper.testing.sample_access import seed

ISSUER, AUDIENCE, TABLE = "https://login.example.com/", "orders-api", "bench-config"


def measure(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """Median and p99 in microseconds."""
    for _ in range(min(200, n)):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=5000, help="requests per measurement")
    n = parser.parse_args().n
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # moto's dummy credentials
        AWS_DEFAULT_REGION="us-east-1",
    )
    key = rsa_key("bench")
    with LocalJwksServer(public_jwks(key)) as jwks, mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(**tables.table_definition(TABLE))  # type: ignore[arg-type]
        keys = seed(DynamoConfigStore(client, TABLE), now=time.time())
        calls: list[str] = []
        client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.append(model.name)
        )
        settings = Settings.model_validate(
            {
                "config_table": TABLE,
                "issuers": [
                    {
                        "name": "corp",
                        "issuer": ISSUER,
                        "audiences": [AUDIENCE],
                        "jwks_uri": jwks.uri,
                    }
                ],
            }
        )
        authorizer = Authorizer.from_settings(
            settings,
            logger=Logger(service="bench"),
            store=DynamoConfigStore(client, TABLE),
            emitter=ListAuditEmitter(),
        )
        token = mint(
            claims_for(
                ISSUER,
                AUDIENCE,
                now=time.time(),
                subject="alice",
                ttl=3600,
                extra={"tenant": "acme"},
            ),
            key,
        )
        jwt_event = rest_token_event(f"Bearer {token}", "GET", "/orders/o-1")
        key_event = http_api_event({"x-api-key": keys.active}, "GET", "/orders/o-1")
        public = key.private_key.public_key()

        floor = measure(
            lambda: jwt.decode(token, public, algorithms=["RS256"], audience=AUDIENCE), n
        )
        rows: list[tuple[str, float, float, float | None]] = [
            ("PyJWT RS256 decode alone (the floor)", *floor, None)
        ]
        for name, event in (
            ("JWT caller, REST TOKEN", jwt_event),
            ("API-key caller, HTTP API", key_event),
        ):
            authorizer.authorize(event)  # warm the caches
            before = len(calls)
            median, p99 = measure(lambda e=event: authorizer.authorize(e), n)  # type: ignore[misc]
            per_request = (len(calls) - before) / (n + min(200, n))
            rows.append((f"authorize(): {name}", median, p99, per_request))

    print(f"{'path':45} {'median µs':>10} {'p99 µs':>10} {'DynamoDB calls/request':>24}")
    for row in rows:
        extra = f"{row[3]:>24.4f}" if row[3] is not None else f"{'-':>24}"
        print(f"{row[0]:45} {row[1]:>10.0f} {row[2]:>10.0f} {extra}")
    print(
        "\nDynamoDB calls on the warm path are version checks only (one GetItem per "
        f"{settings.config_refresh_seconds:.0f} s per container); the benchmark runs faster "
        "than that interval, so it shows 0."
    )


if __name__ == "__main__":
    main()
