"""The rate-limit algorithm over the counter primitives, once for every store.

Per request, every applicable rule is enforced, most restrictive first; the first rule that
rejects stops the evaluation and the rules already counted give their unit back
(compensation), so a rejected request consumes no quota. The exact bound, stated in the README:
while the compensation is in flight (one round trip) a concurrent request may see a count one
higher than it will be; if a compensation write itself fails, that counter keeps one extra
count for the rest of its window. Counts are never lost in the other direction.

Algorithms:

- ``fixed_window``: one conditional ``ADD`` per request (exact); ``mode="leased"`` reserves a
  block of units with one conditional ``ADD`` and spends them locally (see :class:`_Lease`).
- ``sliding_window``: the two-window weighted estimate; the closed window's count is read once
  per container and cached (it no longer changes).
- ``token_bucket``: GCRA on one ``tat`` attribute (milliseconds), ``burst`` = capacity.

A rejection is cached in the container until it can next succeed: a failed conditional write
still costs a write unit, and an abuser must not turn our table into the bill.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from gatekeeper.clock import Clock, system_clock
from gatekeeper.rate_limit.counters import CounterStore
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.patterns import parsed_pattern, path_matches, split_path
from gatekeeper.store import tables

TTL_GRACE_SECONDS = 300
_MAX_LOCAL_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class Applied:
    """A rule that applies to this request, and the key it is counted under."""

    rule: LimitRule
    scope_key: str


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    rule_id: str
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the quota is back (IETF RateLimit "t")
    window: int  # seconds (IETF RateLimit-Policy "w")
    count: int | None = None
    retry_after: int = 0
    shadow: bool = False
    error: bool = False  # the store failed; allowed or not per the rule's on_error
    cached: bool = False  # answered from the local rejection cache / lease, no I/O


@dataclass(frozen=True, slots=True)
class LimitDecision:
    allowed: bool
    reason: str | None = None  # "rate_limited" | "limiter_unavailable"
    binding: RuleOutcome | None = None  # the outcome the answer (and headers) come from
    outcomes: tuple[RuleOutcome, ...] = ()


def applicable(
    rules: Iterable[LimitRule],
    *,
    api_id: str,
    stage: str,
    method: str,
    path: str,
    tenant: str | None,
    principal_id: str | None,
    key_id: str | None,
    source_ip: str | None,
    roles: Iterable[str],
) -> list[Applied]:
    """The enabled rules whose match fits, each with its scope key; rules whose scope value the
    request lacks (an ``ip`` rule on a TOKEN event, an ``api_key`` rule for a JWT) don't apply."""
    segments = split_path(path)
    held = set(roles)
    out: list[Applied] = []
    for rule in rules:
        m = rule.match
        if not rule.enabled or m.api_id not in (None, api_id) or m.stage not in (None, stage):
            continue
        if "*" not in m.methods and method not in m.methods:
            continue
        if not path_matches(parsed_pattern(m.path), segments, tenant):
            continue
        key: str | None
        match rule.scope:
            case "global":
                key = "*"
            case "tenant":
                key = tenant
            case "principal":
                key = principal_id
            case "api_key":
                key = key_id
            case "ip":
                key = source_ip
            case "role":
                key = principal_id if rule.role in held else None
        if key:
            out.append(Applied(rule, key))
    return out


@dataclass
class _Lease:
    """Units reserved from a window's counter and not yet spent by this container.

    A lease dies with its window, so units held by a container that stopped receiving traffic
    are lost for at most the rest of that window; each lease is at most ``max_lease_fraction``
    of the limit, which bounds how much a crowd of idle containers can hold back.
    """

    window_start: int
    tokens: int
    last_count: int


@dataclass
class _Rate:
    """Exponentially weighted request rate of one (rule, key) in this container, per second."""

    last: float
    per_second: float = 0.0

    def observe(self, now: float) -> float:
        gap = max(now - self.last, 1e-3)
        self.per_second = 0.8 * self.per_second + 0.2 * min(1.0 / gap, 10_000.0)
        self.last = now
        return self.per_second


@dataclass
class RateLimiter:
    """Enforces limit rules against a :class:`CounterStore`; one instance per container."""

    store: CounterStore
    clock: Clock = system_clock
    lease_seconds: float = 10.0
    max_lease_fraction: float = 0.1
    _rejected: dict[tuple[str, str], tuple[float, RuleOutcome]] = field(default_factory=dict)
    _leases: dict[tuple[str, str], _Lease] = field(default_factory=dict)
    _rates: dict[tuple[str, str], _Rate] = field(default_factory=dict)
    _closed_counts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    _tat_hint: dict[tuple[str, str], int] = field(default_factory=dict)

    def forget_rejections(self) -> None:
        """Drop cached rejections (the rules changed: a raised limit must apply at once)."""
        self._rejected.clear()

    def check(self, applied: Sequence[Applied]) -> LimitDecision:
        now = self.clock()
        self._prune(now)
        ordered = sorted(
            applied, key=lambda a: (a.rule.shadow, a.rule.limit / a.rule.window_seconds)
        )
        outcomes: list[RuleOutcome] = []
        counted: list[Applied] = []
        rejection: RuleOutcome | None = None
        for item in ordered:
            outcome = self._check_one(item, now)
            outcomes.append(outcome)
            if outcome.shadow:
                continue
            if not outcome.allowed:
                rejection = outcome
                break
            if not outcome.error and (not outcome.cached or item.rule.mode == "leased"):
                counted.append(item)
        if rejection is not None:
            for item in counted:
                self._give_back(item, now)
            reason = "limiter_unavailable" if rejection.error else "rate_limited"
            return LimitDecision(False, reason, rejection, tuple(outcomes))
        enforced = [o for o in outcomes if not o.shadow]
        binding = min(enforced, key=lambda o: (o.remaining, -o.reset)) if enforced else None
        return LimitDecision(True, None, binding, tuple(outcomes))

    # --- one rule -----------------------------------------------------------------------------
    def _check_one(self, item: Applied, now: float) -> RuleOutcome:
        rule, ident = item.rule, (item.rule.rule_id, item.scope_key)
        cached = self._rejected.get(ident)
        if cached is not None and cached[0] > now:
            outcome = cached[1]
            return replace(outcome, reset=_ceil(cached[0] - now), cached=True)
        try:
            if rule.algorithm == "token_bucket":
                outcome = self._token_bucket(item, now)
            elif rule.algorithm == "sliding_window":
                outcome = self._sliding_window(item, now)
            elif rule.mode == "leased":
                outcome = self._leased_window(item, now)
            else:
                outcome = self._fixed_window(item, now)
        except Exception:  # the store failed: the rule's own failure policy decides
            allowed = rule.on_error == "open"
            return RuleOutcome(
                rule.rule_id,
                allowed,
                rule.limit,
                0,
                0,
                rule.window_seconds,
                shadow=rule.shadow,
                error=True,
                retry_after=0 if allowed else 1,
            )
        if rule.shadow:
            outcome = replace(outcome, shadow=True)
        if not outcome.allowed:
            self._rejected[ident] = (now + outcome.retry_after, outcome)
        return outcome

    def _fixed_window(self, item: Applied, now: float) -> RuleOutcome:
        rule = item.rule
        start, end = _window(now, rule.window_seconds)
        key = tables.counter_key(rule.rule_id, item.scope_key, start)
        added = self.store.add(key, 1, rule.limit, end + TTL_GRACE_SECONDS)
        return self._window_outcome(rule, added.ok, added.count, rule.limit, now, end)

    def _leased_window(self, item: Applied, now: float) -> RuleOutcome:
        rule = item.rule
        ident = (rule.rule_id, item.scope_key)
        start, end = _window(now, rule.window_seconds)
        rate = self._rates.setdefault(ident, _Rate(now)).observe(now)
        lease = self._leases.get(ident)
        if lease is not None and lease.window_start == start and lease.tokens > 0:
            lease.tokens -= 1
            remaining = max(rule.limit - lease.last_count, 0) + lease.tokens
            return RuleOutcome(
                rule.rule_id,
                True,
                rule.limit,
                remaining,
                _ceil(end - now),
                rule.window_seconds,
                count=lease.last_count,
                cached=True,
            )
        size = self._lease_size(rule, rate)
        key = tables.counter_key(rule.rule_id, item.scope_key, start)
        added = self.store.add(key, size, rule.limit, end + TTL_GRACE_SECONDS)
        if not added.ok and added.count < rule.limit:  # less left than we asked: take the rest
            size = rule.limit - added.count
            added = self.store.add(key, size, rule.limit, end + TTL_GRACE_SECONDS)
        if not added.ok:
            self._leases.pop(ident, None)
            return self._window_outcome(rule, False, added.count, rule.limit, now, end)
        self._leases[ident] = _Lease(start, size - 1, added.count)
        return RuleOutcome(
            rule.rule_id,
            True,
            rule.limit,
            rule.limit - added.count + size - 1,
            _ceil(end - now),
            rule.window_seconds,
            count=added.count,
        )

    def _lease_size(self, rule: LimitRule, rate: float) -> int:
        """Enough for ``lease_seconds`` of this container's traffic, capped to a fraction."""
        cap = max(1, int(rule.limit * self.max_lease_fraction))
        return max(1, min(cap, math.ceil(rate * self.lease_seconds)))

    def _sliding_window(self, item: Applied, now: float) -> RuleOutcome:
        rule = item.rule
        width = rule.window_seconds
        start, end = _window(now, width)
        previous = self._closed_count(item, start - width)
        weight = 1.0 - (now - start) / width
        cap = math.floor(rule.limit - previous * weight + 1e-9)
        key = tables.counter_key(rule.rule_id, item.scope_key, start)
        if cap <= 0:
            return self._sliding_rejection(rule, previous, weight, cap, now, end)
        added = self.store.add(key, 1, cap, end + width + TTL_GRACE_SECONDS)
        if not added.ok:
            return self._sliding_rejection(rule, previous, weight, added.count, now, end)
        return RuleOutcome(
            rule.rule_id,
            True,
            rule.limit,
            cap - added.count,
            _ceil(end - now),
            width,
            count=added.count,
        )

    def _sliding_rejection(
        self, rule: LimitRule, previous: int, weight: float, current: int, now: float, end: int
    ) -> RuleOutcome:
        """Retry when the previous window's weight has decayed enough for one more request."""
        wait = end - now
        if previous > 0:
            target = (rule.limit - current - 1) / previous
            if target >= 0:
                wait = min(wait, max((weight - target) * rule.window_seconds, 0.001))
        return RuleOutcome(
            rule.rule_id,
            False,
            rule.limit,
            0,
            _ceil(end - now),
            rule.window_seconds,
            count=current,
            retry_after=_ceil(wait),
        )

    def _closed_count(self, item: Applied, window_start: int) -> int:
        ident = (item.rule.rule_id, item.scope_key, window_start)
        if ident not in self._closed_counts:
            key = tables.counter_key(item.rule.rule_id, item.scope_key, window_start)
            self._closed_counts[ident] = self.store.get_count(key)
        return self._closed_counts[ident]

    def _token_bucket(self, item: Applied, now: float) -> RuleOutcome:
        rule = item.rule
        ident = (rule.rule_id, item.scope_key)
        capacity = rule.burst or rule.limit
        interval = _interval_ms(rule)
        tolerance = (capacity - 1) * interval
        now_ms = int(now * 1000)
        key = tables.bucket_key(rule.rule_id, item.scope_key)
        expires = (now_ms + capacity * interval) // 1000 + TTL_GRACE_SECONDS
        hint = self._tat_hint.get(ident)
        idle = hint is None or hint <= now_ms
        tat: int | None = None
        for _ in range(4):
            taken, tat = self.store.take_token(
                key,
                now=now_ms,
                interval=interval,
                tolerance=tolerance,
                idle=idle,
                expires_at=expires,
            )
            if taken and tat is not None:
                self._tat_hint[ident] = tat
                remaining = max(0, (now_ms + capacity * interval - tat) // interval)
                return RuleOutcome(
                    rule.rule_id,
                    True,
                    capacity,
                    remaining,
                    _ceil((tat - now_ms) / 1000),
                    rule.window_seconds,
                )
            if tat is None or tat <= now_ms:
                idle = True
            elif tat <= now_ms + tolerance:
                idle = False
            else:
                break
        wait_ms = (tat - now_ms - tolerance) if tat is not None else interval
        if tat is not None:
            self._tat_hint[ident] = tat
        return RuleOutcome(
            rule.rule_id,
            False,
            capacity,
            0,
            _ceil(((tat or now_ms) - now_ms) / 1000),
            rule.window_seconds,
            retry_after=max(1, _ceil(wait_ms / 1000)),
        )

    # --- compensation and housekeeping -------------------------------------------------------
    def _give_back(self, item: Applied, now: float) -> None:
        rule = item.rule
        ident = (rule.rule_id, item.scope_key)
        try:
            if rule.algorithm == "token_bucket":
                interval = _interval_ms(rule)
                self.store.give_back_token(tables.bucket_key(*ident), interval)
            elif rule.mode == "leased":
                lease = self._leases.get(ident)
                if lease is not None:
                    lease.tokens += 1
            else:
                start, _ = _window(now, rule.window_seconds)
                self.store.subtract(tables.counter_key(rule.rule_id, item.scope_key, start), 1)
        except Exception:  # noqa: S110 - bound stated above: one extra count for the window
            pass

    def _prune(self, now: float) -> None:
        if len(self._rejected) > _MAX_LOCAL_ENTRIES:
            self._rejected = {k: v for k, v in self._rejected.items() if v[0] > now}
        for table in (self._leases, self._rates, self._tat_hint, self._closed_counts):
            if len(table) > _MAX_LOCAL_ENTRIES:
                table.clear()

    def _window_outcome(
        self, rule: LimitRule, ok: bool, count: int, limit: int, now: float, end: int
    ) -> RuleOutcome:
        reset = _ceil(end - now)
        return RuleOutcome(
            rule.rule_id,
            ok,
            limit,
            max(limit - count, 0) if ok else 0,
            reset,
            rule.window_seconds,
            count=count,
            retry_after=0 if ok else max(1, reset),
        )


def _interval_ms(rule: LimitRule) -> int:
    """Milliseconds per token, rounded *up* (integer arithmetic): a shorter interval than
    ``window / limit`` would refill faster than the limit allows."""
    return max(1, -(-rule.window_seconds * 1000 // rule.limit))


def _window(now: float, width: int) -> tuple[int, int]:
    start = int(now // width) * width
    return start, start + width


def _ceil(seconds: float) -> int:
    return max(0, math.ceil(seconds - 1e-9))
