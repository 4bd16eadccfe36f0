"""RPM/TPM buckets (deterministic clock), header parsing, and a server that enforces an RPM."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from conftest import TEST_API_KEY
from openai_server import Reply
from persona_foundry.llm.client import ChatRequest, OpenAIBackend
from persona_foundry.llm.pool import LLMPool
from persona_foundry.llm.ratelimit import BURST_S, RateLimiter, TokenBucket, parse_reset


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("6m0s", 360.0), ("59.7s", 59.7), ("20ms", 0.02), ("1h2m3s", 3723.0),
    ("12", 12.0), ("soon", None), ("", None), (None, None),
])
def test_parse_reset(text: str | None, seconds: float | None) -> None:
    assert parse_reset(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_bucket_refills_continuously_and_refunds() -> None:
    clock = Clock()
    bucket = TokenBucket(600, clock)  # 10 a second, 100 at most (BURST_S = 10)
    assert bucket.capacity == 600 * BURST_S / 60
    bucket.take(100)
    assert bucket.wait_s(1) == pytest.approx(0.1)
    clock.now += 0.5
    assert bucket.wait_s(5) == 0 and bucket.wait_s(6) == pytest.approx(0.1)
    bucket.refund(1000)
    assert bucket.level == bucket.capacity


def test_headers_tighten_and_create_buckets() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=None, tpm=None, clock=clock)
    limiter.observe({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                     "x-ratelimit-reset-requests": "6s",
                     "x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "400"})
    assert limiter.requests is not None and limiter.requests.per_minute == 60
    assert limiter.requests.wait_s(1) >= 6  # exhausted until the server's reset
    assert limiter.tokens is not None and limiter.tokens.level <= 400


def _request() -> ChatRequest:
    return ChatRequest("m", [{"role": "user", "content": "hi"}], "core", {}, 0.0, 10)


def test_pool_stays_under_a_server_enforced_rpm(start_server) -> None:
    rpm = 600  # 10 a second; the server's own bucket holds BURST_S seconds' worth
    allowance = TokenBucket(rpm)
    lock = threading.Lock()

    def responder(body: dict[str, Any]) -> Reply:
        with lock:
            if allowance.wait_s(1) > 0.05:  # a little slack for the two clocks' jitter
                return Reply(status=429, headers={"Retry-After": "1"})
            allowance.take(1)
        return Reply('{"ok": true}')

    server = start_server(responder)
    backend = OpenAIBackend(base_url=server.base_url, api_key=TEST_API_KEY, timeout_s=10)
    pool = LLMPool(backend, max_concurrent=50, max_attempts=3, rpm=rpm)

    async def burst() -> float:
        started = time.monotonic()
        try:
            await asyncio.gather(*[pool.complete(_request()) for _ in range(130)])
        finally:
            await pool.aclose()
        return time.monotonic() - started

    elapsed = asyncio.run(burst())
    statuses = [r.status for r in server.chat_requests()]
    assert statuses.count(429) <= 4  # under 3 % of calls: the pace matches, no storm
    assert statuses.count(200) == 130  # nothing lost
    # 100 at once, then 10 a second: about 3 s; each rare 429 pauses everyone for 1 s.
    assert 2.5 <= elapsed <= 3.5 + statuses.count(429) * 1.5
