"""Injectable time, so that expiry, refresh intervals and windows are testable without sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Returns the current time as Unix epoch seconds."""

system_clock: Clock = time.time


class FakeClock:
    """A clock for tests and the demo: starts at ``start`` and only moves when told to."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
