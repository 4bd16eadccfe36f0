"""Adaptive concurrency: find the speed an endpoint can take, below MAX_CONCURRENT.

AIMD, as TCP does it: the window starts at MAX_CONCURRENT (most endpoints take it), halves on a
429, shrinks by a fifth when latency per output token climbs past twice its best (a self-hosted
server that queues instead of saying 429), and after either grows by one call per window of
successes back towards the maximum. A 429 also pauses the whole endpoint until its Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Callable

LATENCY_CLIMB = 2.0  # latency per token this many times its floor means the server is queueing
LATENCY_BACKOFF = 0.8
RATE_LIMIT_BACKOFF = 0.5
MIN_WINDOW = 1.0
# A call's own output tokens explain its latency; this many tokens stand for its fixed costs.
FIXED_COST_TOKENS = 20


class AdaptiveWindow:
    """How many calls may be in flight now; fed with every call's outcome."""

    def __init__(self, maximum: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = float(maximum)
        self.value = float(maximum)
        self._clock = clock
        self._floor_s_per_token: float | None = None
        self._calls_since_backoff = maximum  # the first trouble backs off at once
        self.paused_until = 0.0

    @property
    def limit(self) -> int:
        """The window as a whole number of calls (at least one)."""
        return max(1, int(self.value))

    def _backoff(self, factor: float) -> None:
        # At most one backoff per window of calls: the calls already in flight were sent under
        # the old window and will report the same trouble.
        if self._calls_since_backoff < self.limit:
            return
        self.value = max(MIN_WINDOW, self.value * factor)
        self._calls_since_backoff = 0

    def on_success(self, latency_s: float, completion_tokens: int) -> None:
        """A call succeeded: grow, unless its latency says the server is queueing."""
        self._calls_since_backoff += 1
        per_token = latency_s / (completion_tokens + FIXED_COST_TOKENS)
        floor = self._floor_s_per_token
        self._floor_s_per_token = per_token if floor is None else min(floor, per_token)
        if floor is not None and per_token > LATENCY_CLIMB * floor:
            self._backoff(LATENCY_BACKOFF)
            return
        self.value = min(self.maximum, self.value + 1.0 / self.value)

    def on_rate_limited(self, retry_after_s: float | None) -> None:
        """A 429: halve the window and pause the endpoint until the server's Retry-After."""
        self._calls_since_backoff += 1
        self._backoff(RATE_LIMIT_BACKOFF)
        if retry_after_s:
            self.paused_until = max(self.paused_until, self._clock() + retry_after_s)

    def pause_left_s(self) -> float:
        """Seconds until the endpoint may be called again (0 when not paused)."""
        return max(0.0, self.paused_until - self._clock())
