"""DynamoDB calls per request for 1, 3 and 5 applicable rules, exact and leased mode.

Run: ``.venv/bin/python bench/rate_limit_bench.py``. Steady traffic at 90 % of a 1,000/minute
limit for ten minutes, spread round-robin over 1 or 4 warm containers (each its own limiter,
sharing one counter store). Counts store calls (each is one DynamoDB request in production:
UpdateItem or GetItem) and the limiter's own CPU time per request.
"""

from __future__ import annotations

import time

from gatekeeper.clock import FakeClock
from gatekeeper.rate_limit.counters import InMemoryCounterStore
from gatekeeper.rate_limit.limiter import Applied, RateLimiter
from gatekeeper.rate_limit.rules import LimitRule

LIMIT = 1000
MINUTES = 10
RATE = 0.9 * LIMIT / 60  # requests per second


def rules(count: int, mode: str) -> list[Applied]:
    """``count`` rules that all apply; the first is the 1,000/min rule, others are looser."""
    out = [LimitRule(rule_id="r0", scope="global", limit=LIMIT, window="minute", mode=mode)]
    for i in range(1, count):
        out.append(
            LimitRule(
                rule_id=f"r{i}",
                scope="global",
                limit=LIMIT * (i + 1) * 60,
                window="hour",
                mode=mode,
            )
        )
    return [Applied(rule, "*") for rule in out]


def run(count: int, mode: str, containers: int) -> tuple[float, float, int]:
    store, clock = InMemoryCounterStore(), FakeClock(1_800_000_000.0)
    limiters = [RateLimiter(store, clock=clock) for _ in range(containers)]
    applied = rules(count, mode)
    requests = int(RATE * 60 * MINUTES)
    allowed = 0
    cpu = 0.0
    warmup = requests // 10  # skip the first minute: steady state
    calls_at_warmup = 0
    for i in range(requests):
        clock.advance(1 / RATE)
        if i == warmup:
            calls_at_warmup = store.calls
        started = time.perf_counter()
        allowed += limiters[i % containers].check(applied).allowed
        cpu += time.perf_counter() - started
    per_request = (store.calls - calls_at_warmup) / (requests - warmup)
    return per_request, cpu / requests * 1e6, requests - allowed


def main() -> None:
    print(f"steady traffic at 90 % of {LIMIT}/minute for {MINUTES} minutes\n")
    print(
        f"{'rules':>5} {'mode':>7} {'containers':>10} {'DynamoDB calls/request':>23} "
        f"{'limiter µs/request':>19} {'rejected':>9}"
    )
    for containers in (1, 4):
        for count in (1, 3, 5):
            for mode in ("exact", "leased"):
                calls, cpu, rejected = run(count, mode, containers)
                print(
                    f"{count:>5} {mode:>7} {containers:>10} {calls:>23.4f} {cpu:>19.1f} "
                    f"{rejected:>9}"
                )


if __name__ == "__main__":
    main()
