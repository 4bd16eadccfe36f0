"""Publish retry rules: how long a 429 waits, how 5xx back off, and which header says when.

Pure functions and named constants, like llm/retry.py; the publisher applies them once per send.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from ..llm.retry import server_retry_after_s

MAX_SEND_ATTEMPTS = 5
INITIAL_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# Wait for a platform's reset up to 15 minutes (Mastodon's and X's windows are 5–15 min); a
# later reset defers the account's posts to the next run instead of holding the process.
MAX_RATE_LIMIT_WAIT_S = 900.0
# Servers' clocks and ours differ by a little; arriving just after the reset is enough.
RESET_MARGIN_S = 0.5
# Rate-limit reset headers by platform family, each an epoch-seconds value.
RESET_HEADERS = ("x-ratelimit-reset", "x-rate-limit-reset", "ratelimit-reset")


def reset_at_from_headers(headers: Mapping[str, str], *, now: float) -> float | None:
    """When a 429's limit resets (epoch seconds), from the reset or Retry-After header."""
    lowered = {key.lower(): value for key, value in headers.items()}
    for name in RESET_HEADERS:
        value = lowered.get(name)
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        # `ratelimit-reset` (IETF draft) is seconds from now; the others are epoch seconds.
        return now + number if number < 10**9 else number
    after = server_retry_after_s(lowered)
    return None if after is None else now + after


def rate_limit_wait_s(reset_at: float | None, *, now: float, attempt: int) -> float:
    """Seconds to wait after a 429: until the reset (plus a margin), else the backoff."""
    if reset_at is None:
        return backoff_s(attempt)
    return max(0.0, reset_at - now) + RESET_MARGIN_S


def backoff_s(attempt: int, *, rng: random.Random | None = None) -> float:
    """Capped exponential with full jitter before retry number `attempt` (1-based)."""
    ceiling = min(MAX_BACKOFF_S, INITIAL_BACKOFF_S * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)
