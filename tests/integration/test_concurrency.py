"""Exactness under concurrency, against real server processes: moto in server mode, and
dynalite, a second and independent DynamoDB implementation.

Eight threads, each with its own client and limiter (eight "containers"), fire at one limit
until each is refused; the total granted must be exactly the limit: not one more, not one less.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest

from gatekeeper.clock import FakeClock
from gatekeeper.rate_limit.counters import DynamoCounterStore
from gatekeeper.rate_limit.limiter import Applied, RateLimiter
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.store import tables

THREADS = 8
LIMIT = 120


def _client(endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")


def _create_table(endpoint: str, table: str) -> None:
    client = _client(endpoint)
    client.create_table(**tables.counters_table_definition(table))
    for _ in range(100):  # dynalite, like DynamoDB, takes a moment to make a table ACTIVE
        if client.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE":
            return
        time.sleep(0.05)
    pytest.fail(f"table {table} did not become ACTIVE")


@pytest.mark.parametrize("backend", ["moto_endpoint", "dynalite_endpoint"])
@pytest.mark.parametrize("mode", ["exact", "leased"])
def test_exactly_the_limit_is_granted_under_concurrency(
    request: pytest.FixtureRequest, backend: str, mode: str
) -> None:
    endpoint: str = request.getfixturevalue(backend)
    table = f"counters-{mode}"
    _create_table(endpoint, table)
    rule = LimitRule(
        rule_id=f"c-{mode}",
        scope="global",
        limit=LIMIT,
        window="day",
        mode=mode,
    )
    clock = FakeClock()
    granted = [0] * THREADS
    writes = [0] * THREADS
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def container(index: int) -> None:
        try:
            client = _client(endpoint)
            client.meta.events.register(
                "before-call.dynamodb.UpdateItem",
                lambda **_: writes.__setitem__(index, writes[index] + 1),
            )
            limiter = RateLimiter(DynamoCounterStore(client, table), clock=clock)
            start.wait()
            while limiter.check([Applied(rule, "*")]).allowed:
                granted[index] += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=container, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sum(granted) == LIMIT
    assert sum(1 for g in granted if g) > 1  # the threads really competed
    if mode == "leased":
        assert sum(writes) < LIMIT / 2  # leases: far fewer writes than grants
