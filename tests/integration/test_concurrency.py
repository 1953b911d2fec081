"""Exactness under concurrency, against a real server process (moto in server mode).

Eight threads, each with its own client and limiter (eight "containers"), fire at one limit
until each is refused; the total granted must be exactly the limit: not one more, not one less.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
            pytest.fail("moto server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _client(endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")


@pytest.mark.parametrize("mode", ["exact", "leased"])
def test_exactly_the_limit_is_granted_under_concurrency(moto_endpoint: str, mode: str) -> None:
    table = f"counters-{mode}"
    _client(moto_endpoint).create_table(**tables.counters_table_definition(table))
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
            client = _client(moto_endpoint)
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
