"""Adaptive concurrency: the window's rules (deterministic clock) and a real 429 pause."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import TEST_API_KEY
from openai_server import Reply
from persona_foundry.llm.adaptive import AdaptiveWindow
from persona_foundry.llm.client import ChatRequest, OpenAIBackend
from persona_foundry.llm.pool import LLMPool, PriorityLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_429_halves_once_per_window_and_pauses() -> None:
    clock = Clock()
    window = AdaptiveWindow(16, clock)
    window.on_rate_limited(2.0)
    assert window.limit == 8 and window.pause_left_s() == 2.0
    for _ in range(7):  # the rest of the calls that were in flight report the same 429
        window.on_rate_limited(2.0)
    assert window.limit == 8
    window.on_rate_limited(2.0)  # a whole window later: still limited, halve again
    assert window.limit == 4
    clock.now += 2.5
    assert window.pause_left_s() == 0


def test_window_grows_back_additively_to_the_maximum() -> None:
    window = AdaptiveWindow(8, Clock())
    window.on_rate_limited(None)
    assert window.limit == 4
    for _ in range(5):  # about one window of successes: one more call
        window.on_success(1.0)
    assert window.limit == 5
    for _ in range(200):
        window.on_success(1.0)
    assert window.limit == 8


def test_latency_climb_shrinks_the_window() -> None:
    window = AdaptiveWindow(10, Clock())
    window.on_success(1.0, "core")  # the best a core call takes
    window.on_success(0.3, "visual")  # another kind: compared only with itself
    window.on_success(2.5, "core")  # one slow call is noise
    window.on_success(2.5, "core")
    assert window.limit == 10
    window.on_success(2.6, "core")  # three in a row: the server is queueing
    assert window.limit == 8
    window.on_success(1.1, "core")  # normal again: grows
    assert window.value > 8


def test_longer_replies_are_not_mistaken_for_a_queueing_server() -> None:
    window = AdaptiveWindow(20, Clock())
    window.on_success(0.15, "tweets", reply_tokens=100)  # a short tail batch
    for _ in range(5):  # full batches: 4x the tokens, 3.3x the latency, no queue
        window.on_success(0.5, "tweets", reply_tokens=400)
    assert window.limit == 20
    for _ in range(3):  # full batches really slowing down: that is queueing
        window.on_success(1.2, "tweets", reply_tokens=400)
    assert window.limit == 16


def test_limiter_follows_a_changing_limit() -> None:
    async def scenario() -> list[int]:
        limiter = PriorityLimiter(2)
        await limiter.acquire()
        await limiter.acquire()
        limiter.set_limit(1)
        limiter.release()  # retires a slot above the new limit
        seen = [limiter.in_use]
        waiter = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        seen.append(int(waiter.done()))
        limiter.set_limit(2)  # a higher limit admits the waiter at once
        await asyncio.sleep(0)
        seen += [int(waiter.done()), limiter.in_use]
        return seen

    assert asyncio.run(scenario()) == [1, 0, 1, 2]


def test_a_429_pauses_every_call_to_the_endpoint(start_server) -> None:
    first = {"done": False}

    def responder(body: dict[str, Any]) -> Reply:
        if not first["done"]:
            first["done"] = True
            return Reply(status=429, headers={"Retry-After": "1"}, delay_s=0.0)
        return Reply('{"ok": true}', delay_s=0.05)

    server = start_server(responder)
    backend = OpenAIBackend(base_url=server.base_url, api_key=TEST_API_KEY, timeout_s=10)
    pool = LLMPool(backend, max_concurrent=8, max_attempts=3)
    request = ChatRequest("m", [{"role": "user", "content": "x"}], "core", {}, 0.0, 10)

    async def scenario() -> None:
        try:
            limited_call = asyncio.create_task(pool.complete(request))  # meets the 429
            await asyncio.sleep(0.3)
            # Calls started after the 429 wait out the endpoint's pause too.
            await asyncio.gather(limited_call, *[pool.complete(request) for _ in range(3)])
        finally:
            await pool.aclose()

    asyncio.run(scenario())
    requests = server.chat_requests()
    limited = requests[0]
    assert limited.status == 429 and len(requests) == 5
    assert all(r.started - limited.finished >= 0.95 for r in requests[1:])
    assert pool.window is not None and pool.window.limit == 4
