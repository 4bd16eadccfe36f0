"""Transport retry rules (openai-python's): which failures to retry and how long to wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from .client import BackendError

INITIAL_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0
# Honor server-directed delays up to two minutes; beyond that the server is effectively down.
MAX_RETRY_AFTER_S = 120.0
RETRYABLE_STATUS_CODES = frozenset({408, 409, 429})
# "worker": the HTTP worker process died with the call unanswered (the retry goes in-process),
# or failed on it.
RETRYABLE_KINDS = frozenset({"timeout", "connection", "worker"})
RATE_LIMITED = 429
# Failures that no retry, no other persona and no other stage can fix: stop the run.
FATAL_STATUS_CODES = frozenset({401, 403})


def should_retry(failure: BackendError) -> bool:
    """408/409/429/5xx, timeouts and connection errors are retried; 4xx client errors are not."""
    if failure.kind in RETRYABLE_KINDS:
        return True
    code = failure.status_code
    return code is not None and (code in RETRYABLE_STATUS_CODES or code >= 500)


def is_fatal(failure: BackendError) -> bool:
    """A wrong key or forbidden access: every other call would fail the same way."""
    return failure.status_code in FATAL_STATUS_CODES


def server_retry_after_s(headers: dict[str, str], *, now: datetime | None = None) -> float | None:
    """The delay a server asked for via `retry-after-ms` or `Retry-After` (seconds or a date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def retry_delay(
    attempt: int, failure: BackendError, *, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number `attempt` (1-based).

    A server's own delay wins when it is sane (0 < delay ≤ MAX_RETRY_AFTER_S); otherwise full
    jitter over a capped exponential, so many clients hitting one limit spread out.
    """
    asked = server_retry_after_s(failure.headers)
    if asked is not None and 0 < asked <= MAX_RETRY_AFTER_S:
        return asked
    ceiling = min(MAX_RETRY_DELAY_S, INITIAL_RETRY_DELAY_S * 2 ** (attempt - 1))
    return (rng or random).uniform(0, ceiling)
