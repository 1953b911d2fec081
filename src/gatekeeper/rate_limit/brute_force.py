"""Brute-force protection: failed authentications per source IP (and per API key id) lead to
a temporary block of the IP, checked before any signature work.

Blocks are items in the counters table (``BLOCK#ip#<ip>``), written here when a threshold is
crossed and by the audit sink's detectors. Each container remembers the answer for an IP for
``cache_seconds`` (a block until it ends), so the check costs a read per IP per interval, not
per request; a new block therefore reaches other containers within that bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gatekeeper.clock import Clock, system_clock
from gatekeeper.rate_limit.counters import Block, CounterStore

# 401 reasons that are the caller's failure (not ours, not a missing credential). Not
# ``unknown_kid``: during an issuer's key rotation honest clients see it until our refetch
# interval passes, and a shared NAT address must not be blocked for that; forged kids cost us
# nothing (no fetch inside the interval).
COUNTED_REASONS = frozenset(
    {
        "invalid_token",
        "token_too_large",
        "unknown_issuer",
        "unsupported_algorithm",
        "invalid_signature",
        "token_expired",
        "token_not_yet_valid",
        "invalid_audience",
        "invalid_issuer",
        "missing_claim",
        "key_algorithm_mismatch",
        "malformed_api_key",
        "unknown_api_key",
        "invalid_api_key_secret",
        "api_key_revoked",
        "api_key_expired",
        "api_key_rotated",
        "ambiguous_credentials",
    }
)
_MAX_LOCAL_ENTRIES = 50_000


@dataclass
class BruteForceGuard:
    store: CounterStore
    clock: Clock = system_clock
    threshold: int = 20
    window_seconds: int = 300
    block_seconds: int = 900
    cache_seconds: float = 5.0
    _known: dict[str, tuple[float, Block | None]] = field(default_factory=dict)

    def blocked(self, ip: str | None) -> Block | None:
        """The active block on ``ip``, if any; store errors propagate (the caller fails closed)."""
        if not ip:
            return None
        now = self.clock()
        known = self._known.get(ip)
        if known is not None and known[0] > now:
            block = known[1]
            return block if block is not None and block.until > now else None
        block = self.store.get_block("ip", ip)
        if block is not None and block.until <= now:
            block = None  # expired: TTL deletes late, the clock decides
        until = block.until if block is not None else now + self.cache_seconds
        self._remember(ip, until, block)
        return block

    def record_failure(self, ip: str | None, key_id: str | None, reason: str) -> Block | None:
        """Count one failed authentication; returns the new block if this one crossed the line."""
        if reason not in COUNTED_REASONS or not ip:
            return None
        now = self.clock()
        start = int(now // self.window_seconds) * self.window_seconds
        expires = start + 2 * self.window_seconds
        failures = self.store.add_failure("ip", ip, start, expires)
        if key_id:
            failures = max(failures, self.store.add_failure("key", key_id, start, expires))
        if failures < self.threshold:
            return None
        block = Block(now + self.block_seconds, f"{failures} failed authentications")
        self.store.put_block("ip", ip, block.until, block.reason)
        self._remember(ip, block.until, block)
        return block

    def _remember(self, ip: str, until: float, block: Block | None) -> None:
        if len(self._known) >= _MAX_LOCAL_ENTRIES:
            now = self.clock()
            self._known = {k: v for k, v in self._known.items() if v[0] > now}
        self._known[ip] = (until, block)
