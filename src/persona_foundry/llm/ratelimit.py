"""Requests-per-minute and tokens-per-minute buckets, one pair per endpoint and model.

A call reserves one request and its prompt plus `max_tokens` before it starts and gets back
what the reply did not use. `x-ratelimit-limit-*` / `-remaining-*` / `-reset-*` headers from the
server tighten the buckets (and create them when no `--rpm`/`--tpm` was given).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

SECONDS_PER_MINUTE = 60.0
# A full bucket holds this many seconds of allowance: servers count per minute but many also
# enforce shorter windows, so a whole minute's burst at once invites 429s.
BURST_S = 10.0
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?"
                       r"(?:(\d+(?:\.\d+)?)ms)?$")


def parse_reset(value: str | None) -> float | None:
    """`1s`, `6m0s`, `59.7s`, `20ms` or plain seconds → seconds; None if unreadable."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    match = _DURATION.match(value.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


class TokenBucket:
    """A per-minute allowance that refills continuously; it may go into debt by one call."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.level = self.capacity
        self._clock = clock
        self._updated = clock()

    @property
    def capacity(self) -> float:
        """The most a full bucket holds (BURST_S seconds of allowance, at least one call)."""
        return max(1.0, self.per_minute * BURST_S / SECONDS_PER_MINUTE)

    @property
    def rate_per_s(self) -> float:
        """Refill speed."""
        return self.per_minute / SECONDS_PER_MINUTE

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._updated) * self.rate_per_s)
        self._updated = now

    def wait_s(self, amount: float) -> float:
        """Seconds until `amount` (capped at the capacity) is available."""
        self._refill()
        needed = min(amount, self.capacity)
        return 0.0 if self.level >= needed else (needed - self.level) / self.rate_per_s

    def take(self, amount: float) -> None:
        """Spend `amount` (call only when wait_s(amount) is 0)."""
        self._refill()
        self.level -= amount

    def refund(self, amount: float) -> None:
        """Give back what a call reserved but did not use."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)

    def observe(self, limit: float | None, remaining: float | None,
                reset_s: float | None) -> None:
        """Follow the server: its limit, and never more left than it says remains."""
        self._refill()
        if limit:
            self.per_minute = limit
        if remaining is not None:
            self.level = min(self.level, remaining)
        if remaining is not None and remaining <= 0 and reset_s:
            # Exhausted: nothing more until the server's reset, however fast we would refill.
            self.level = min(self.level, -self.rate_per_s * reset_s)


class RateLimiter:
    """The RPM and TPM buckets of one endpoint+model; `acquire` waits until both allow a call."""

    def __init__(self, rpm: float | None, tpm: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.requests = TokenBucket(rpm, clock) if rpm else None
        self.tokens = TokenBucket(tpm, clock) if tpm else None
        self._lock = asyncio.Lock()  # FIFO: callers are served in arrival order

    async def acquire(self, estimated_tokens: float) -> None:
        """Wait for one request and `estimated_tokens` tokens, then take them."""
        async with self._lock:
            while True:
                wait = max(self.requests.wait_s(1) if self.requests else 0.0,
                           self.tokens.wait_s(estimated_tokens) if self.tokens else 0.0)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(estimated_tokens)

    def refund(self, unused_tokens: float) -> None:
        """Return tokens a call reserved but the reply did not use."""
        if self.tokens and unused_tokens > 0:
            self.tokens.refund(unused_tokens)

    def observe(self, headers: dict[str, str]) -> None:
        """Tighten (or create) the buckets from `x-ratelimit-*` headers."""
        for kind in ("requests", "tokens"):
            limit = _number(headers.get(f"x-ratelimit-limit-{kind}"))
            remaining = _number(headers.get(f"x-ratelimit-remaining-{kind}"))
            if limit is None and remaining is None:
                continue
            bucket = getattr(self, kind)
            if bucket is None and limit:
                bucket = TokenBucket(limit, self._clock)
                setattr(self, kind, bucket)
            if bucket is not None:
                reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
                bucket.observe(limit, remaining, reset)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
