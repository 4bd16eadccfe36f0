"""Transport retry rules (pure) and the pool honouring Retry-After against a real server."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from conftest import TEST_API_KEY
from openai_server import FakeOpenAIServer, Reply
from persona_foundry.errors import TransportError
from persona_foundry.llm.client import BackendError, ChatRequest, OpenAIBackend
from persona_foundry.llm.pool import LLMPool, PriorityLimiter
from persona_foundry.llm.retry import (
    MAX_RETRY_DELAY_S,
    retry_delay,
    server_retry_after_s,
    should_retry,
)
from stage_replies import valid_reply

StartServer = Callable[..., FakeOpenAIServer]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (BackendError("x", status_code=429), True),
        (BackendError("x", status_code=408), True),
        (BackendError("x", status_code=409), True),
        (BackendError("x", status_code=500), True),
        (BackendError("x", status_code=503), True),
        (BackendError("x", kind="timeout"), True),
        (BackendError("x", kind="connection"), True),
        (BackendError("x", status_code=400), False),
        (BackendError("x", status_code=401), False),
        (BackendError("x", status_code=403), False),
        (BackendError("x", status_code=404), False),
        (BackendError("x", status_code=422), False),
        (BackendError("x", kind="local"), False),
    ],
)
def test_should_retry(failure: BackendError, expected: bool) -> None:
    assert should_retry(failure) is expected


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert server_retry_after_s({"retry-after-ms": "1500"}) == 1.5
    assert server_retry_after_s({"retry-after": "3"}) == 3.0
    assert server_retry_after_s({"retry-after": later}, now=now) == 7.0
    assert server_retry_after_s({"retry-after": "soon"}) is None
    assert server_retry_after_s({}) is None


def test_retry_delay_prefers_the_server_then_full_jitter() -> None:
    rng = random.Random(1)
    assert retry_delay(1, BackendError("x", 429, headers={"retry-after": "2"}), rng=rng) == 2.0
    # An absurd server delay is ignored in favour of capped backoff.
    absurd = BackendError("x", 429, headers={"retry-after": "86400"})
    assert retry_delay(1, absurd, rng=rng) <= 0.5
    delays = [retry_delay(10, BackendError("x", 500), rng=rng) for _ in range(200)]
    assert max(delays) <= MAX_RETRY_DELAY_S and min(delays) >= 0
    assert max(delays) > MAX_RETRY_DELAY_S / 2  # jitter spreads over the whole range


def _request() -> ChatRequest:
    return ChatRequest("test-model", [{"role": "user", "content": "hi"}], "core", {}, 0.0, 50)


def _pool(server: FakeOpenAIServer, max_attempts: int = 4) -> LLMPool:
    backend = OpenAIBackend(base_url=server.base_url, api_key=TEST_API_KEY, timeout_s=10)
    return LLMPool(backend, max_concurrent=4, max_attempts=max_attempts)


async def _complete(pool: LLMPool) -> Any:
    try:
        return await pool.complete(_request())
    finally:
        await pool.aclose()


@pytest.mark.parametrize("headers", [{"Retry-After": "1"}, {"retry-after-ms": "1000"}])
def test_pool_waits_as_long_as_the_server_asks(start_server: StartServer,
                                               headers: dict[str, str]) -> None:
    replies = [Reply(status=429, headers=headers)]

    def responder(body: dict[str, Any]) -> Reply:
        return replies.pop() if replies else Reply('{"ok": true}')

    server = start_server(responder)
    completion = asyncio.run(_complete(_pool(server)))

    first, second = server.chat_requests()
    assert second.started - first.finished >= 0.95
    assert completion.attempts == 2 and completion.text == '{"ok": true}'


def test_pool_gives_up_after_max_attempts(start_server: StartServer) -> None:
    server = start_server(lambda body: Reply(status=503))
    with pytest.raises(TransportError, match=r"HTTP 503.*after 3 attempts"):
        asyncio.run(_complete(_pool(server, max_attempts=3)))
    assert len(server.chat_requests()) == 3


def test_pool_does_not_retry_a_bad_request(start_server: StartServer) -> None:
    server = start_server(lambda body: Reply(status=400))
    with pytest.raises(TransportError, match="after 1 attempt"):
        asyncio.run(_complete(_pool(server)))
    assert len(server.chat_requests()) == 1


def test_sdk_retries_are_off(start_server: StartServer) -> None:
    server = start_server(lambda body: Reply(status=500))
    with pytest.raises(TransportError):
        asyncio.run(_complete(_pool(server, max_attempts=1)))
    assert len(server.chat_requests()) == 1  # one layer of retries only: ours


def test_priority_limiter_serves_lowest_value_first() -> None:
    async def scenario() -> list[str]:
        limiter = PriorityLimiter(1)
        order: list[str] = []
        await limiter.acquire()

        async def waiter(name: str, priority: float) -> None:
            await limiter.acquire(priority)
            order.append(name)
            limiter.release()

        tasks = [asyncio.create_task(waiter(n, p)) for n, p in
                 [("leaf", -15.0), ("core", -60.0), ("strategy", -40.0), ("leaf2", -15.0)]]
        await asyncio.sleep(0.01)
        limiter.release()
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == ["core", "strategy", "leaf", "leaf2"]


def test_priority_limiter_survives_cancelled_waiters() -> None:
    async def scenario() -> int:
        limiter = PriorityLimiter(1)
        await limiter.acquire()
        doomed = asyncio.create_task(limiter.acquire(0))
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.sleep(0)
        limiter.release()
        await asyncio.wait_for(limiter.acquire(), timeout=1)
        return limiter.in_use

    assert asyncio.run(scenario()) == 1


def test_valid_reply_is_used_for_completion_text(start_server: StartServer) -> None:
    server = start_server(valid_reply)
    request = ChatRequest("m", [{"role": "user", "content": "x"}], "social", {}, 0.0, 50)
    pool = _pool(server)

    async def go() -> str:
        try:
            return (await pool.complete(request)).text
        finally:
            await pool.aclose()

    assert "relationships" in asyncio.run(go())
