"""A bounded load run against `gatekeeper serve`: requests/s, latency percentiles, and the rate
limit exact under concurrent load.

Run: ``.venv/bin/python bench/serve_load.py [--requests 2000] [--concurrency 16]``. Starts
``gatekeeper serve`` (embedded tables, built-in echo backend) as a process with a throw-away
state directory and an access file that adds one limit rule, then

1. **throughput**: ``--requests`` allowed requests (a JWT caller, ``GET /orders/{id}``; no
   limit rule is counted: the rule below matches invoices only, and the sample's
   leased tenant rule does not apply to a caller without a tenant) from
   ``--concurrency`` concurrent httpx connections; prints requests/s, p50, p90, p99, max;
2. **exactness**: ``--burst`` concurrent requests by another caller against a route limited to
   ``--limit`` per hour: exactly ``--limit`` must get a 200 and every other one a 403 with
   ``X-Gatekeeper-Reason: rate_limited`` and ``Retry-After``.

Exits 1 if any request fails unexpectedly or the limit is not exact. (No ``ab`` needed: httpx,
which the ``serve`` extra installs, is the load generator; every request has a timeout.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from gatekeeper.serve.state import mint_token

ROOT = Path(__file__).resolve().parents[1]
LIMIT_RULE = """
- rule_id: bench-invoices
  scope: principal
  match: {methods: [GET], path: "/orders/*/invoice"}
  limit: LIMIT
  window: hour
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(state: Path, access: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "gatekeeper.cli", "serve", "--port", str(port)]
    argv += ["--access", str(access), "--issuer-name", "corp", "--quiet"]
    env = {**os.environ, "GATEKEEPER_STATE_DIR": str(state)}
    for name in ("GATEKEEPER_ENDPOINT_URL", "GATEKEEPER_CONFIG_TABLE", "GATEKEEPER_COUNTERS_TABLE"):
        env.pop(name, None)
    log = (state.parent / "serve.log").open("w")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"serve exited {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("serve did not start within 60 s") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def _run(
    url: str, paths: list[str], headers: dict[str, str], concurrency: int
) -> tuple[list[float], list[httpx.Response], float]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    latencies: list[float] = []
    responses: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=httpx.Timeout(30.0), limits=limits
    ) as client:

        async def worker() -> None:
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                response = await client.get(path)
                latencies.append(time.perf_counter() - started)
                responses.append(response)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, responses, elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--burst", type=int, default=300)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gatekeeper-load-") as tmp:
        folder = Path(tmp)
        state = folder / "state"
        access = folder / "access.yaml"
        rule = LIMIT_RULE.replace("LIMIT", str(args.limit))
        access.write_text(
            (ROOT / "examples" / "access.yaml")
            .read_text()
            .replace("limits:\n", "limits:" + rule, 1)
        )
        # a caller without a tenant (orders-reader by its scope claim): the sample's 1,000 per
        # minute tenant limit does not apply to it, so the throughput run measures the gateway
        reader = mint_token(state, "svc-load", claims={"scope": "orders:read"})
        alice = {"Authorization": f"Bearer {reader}"}
        bob = {"Authorization": f"Bearer {mint_token(state, 'bob', tenant='globex')}"}
        with serve(state, access) as url:
            asyncio.run(_run(url, ["/orders/o-0"] * 50, alice, 4))  # warm-up
            paths = [f"/orders/o-{i}" for i in range(args.requests)]
            latencies, responses, elapsed = asyncio.run(_run(url, paths, alice, args.concurrency))
            statuses = Counter(r.status_code for r in responses)
            ms = [x * 1000 for x in latencies]
            print(
                f"throughput: {len(responses)} requests, concurrency {args.concurrency}: "
                f"{len(responses) / elapsed:.0f} requests/s; latency p50 "
                f"{statistics.median(ms):.1f} ms, p90 {percentile(ms, 90):.1f} ms, p99 "
                f"{percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms; statuses {dict(statuses)}"
            )
            ok = statuses == Counter({200: args.requests})
            burst = ["/orders/o-7/invoice"] * args.burst
            _, limited, burst_elapsed = asyncio.run(_run(url, burst, bob, args.concurrency))
            granted = sum(r.status_code == 200 for r in limited)
            rejected = [r for r in limited if r.status_code == 403]
            proper = all(
                r.headers.get("X-Gatekeeper-Reason") == "rate_limited"
                and int(r.headers.get("Retry-After", "0")) >= 1
                for r in rejected
            )
            exact = granted == args.limit and len(rejected) == args.burst - args.limit and proper
            print(
                f"rate limit: {args.burst} concurrent requests against {args.limit}/hour in "
                f"{burst_elapsed:.2f} s: {granted} granted, {len(rejected)} rejected "
                f"(403 rate_limited with Retry-After: {proper}): "
                f"{'exact' if exact else 'NOT EXACT'}"
            )
    return 0 if ok and exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
