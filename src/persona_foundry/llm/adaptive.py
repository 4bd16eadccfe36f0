"""Adaptive concurrency: find the speed an endpoint can take, below MAX_CONCURRENT.

AIMD, as TCP does it: the window starts at MAX_CONCURRENT (most endpoints take it), halves on a
429, shrinks by a fifth when calls of one kind (a stage, posts… with replies of about the same
length) keep taking more than twice their best latency (a self-hosted server that queues
instead of saying 429), and after either grows by one call per window of successes back
towards the maximum. A 429 also pauses the whole endpoint until its Retry-After.
"""

from __future__ import annotations

import time
from collections.abc import Callable

LATENCY_CLIMB = 2.0  # latency this many times its kind's best means the server is queueing
CLIMB_STREAK = 3  # …for this many calls of that kind in a row (one slow call is noise)
LATENCY_BACKOFF = 0.8
RATE_LIMIT_BACKOFF = 0.5
MIN_WINDOW = 1.0


class AdaptiveWindow:
    """How many calls may be in flight now; fed with every call's outcome."""

    def __init__(self, maximum: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = float(maximum)
        self.value = float(maximum)
        self._clock = clock
        # The best latency seen for each kind of call: kinds differ in size, so each is
        # compared with itself.
        self._floors: dict[str, float] = {}
        self._streaks: dict[str, int] = {}
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

    def on_success(self, latency_s: float, kind: str = "", reply_tokens: int = 0) -> None:
        """A call succeeded: grow, unless its kind keeps running slow (the server is queueing)."""
        self._calls_since_backoff += 1
        # Latency grows with the reply's length: compare a call only with calls of its kind
        # whose replies were about as long (same power of two of completion tokens).
        kind = f"{kind}/{reply_tokens.bit_length()}"
        floor = self._floors.get(kind)
        self._floors[kind] = latency_s if floor is None else min(floor, latency_s)
        slow = floor is not None and latency_s > LATENCY_CLIMB * floor
        self._streaks[kind] = self._streaks.get(kind, 0) + 1 if slow else 0
        if self._streaks[kind] >= CLIMB_STREAK:
            self._streaks[kind] = 0
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
