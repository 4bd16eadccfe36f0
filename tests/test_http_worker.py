"""The HTTP worker (llm/http_worker.py): a real child process sending calls to a real server,
under the pool's window, its 429 pauses, cancellation and its own death."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner

from conftest import TEST_API_KEY
from openai_server import FakeOpenAIServer, Reply
from persona_foundry.cli import app
from persona_foundry.llm.client import ChatRequest, Completion
from persona_foundry.llm.http_worker import HttpWorkerBackend
from persona_foundry.llm.pool import LLMPool
from persona_foundry.stages import STAGES
from test_tweets import env

StartServer = Callable[..., FakeOpenAIServer]
T = TypeVar("T")
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
READY_TIMEOUT_S = 20.0


def _request(number: int) -> ChatRequest:
    return ChatRequest("test-model", [{"role": "user", "content": f"call {number} ✓"}],
                       "core", SCHEMA, 0.4, 50, seed=number)


def _echo(body: dict[str, Any]) -> Reply:
    """The call's number back, so each reply can be matched with its request."""
    number = int(body["messages"][0]["content"].split()[1])
    return Reply(json.dumps({"n": number}))


def _backend(server: FakeOpenAIServer, start_after_calls: int = 0) -> HttpWorkerBackend:
    return HttpWorkerBackend(base_url=server.base_url, api_key=TEST_API_KEY, timeout_s=20,
                             start_after_calls=start_after_calls)


def _pool(backend: HttpWorkerBackend, window: int) -> LLMPool:
    return LLMPool(backend, max_concurrent=window, max_attempts=3, retry_delay_scale=0.01)


async def _worker_ready(pool: LLMPool, backend: HttpWorkerBackend) -> None:
    """Make calls until the worker is up and has sent one, as a run does (a backend with
    start_after_calls=0 starts it at the preflight and waits for it)."""
    await pool.check()
    deadline = time.monotonic() + READY_TIMEOUT_S
    number = 10_000
    while backend.through_worker == 0:
        assert time.monotonic() < deadline, "the HTTP worker never came up"
        await pool.complete(_request(number))
        number += 1


def _with_worker(server: FakeOpenAIServer, window: int,
                 work: Callable[[LLMPool, HttpWorkerBackend], Awaitable[T]]) -> T:
    """`work` on a pool whose worker is up (started at the preflight), closed afterwards."""
    async def go() -> T:
        backend = _backend(server)
        pool = _pool(backend, window)
        try:
            await _worker_ready(pool, backend)
            return await work(pool, backend)
        finally:
            await pool.aclose()

    return asyncio.run(go())


def _numbers(completions: list[Completion]) -> list[int]:
    return [json.loads(completion.text)["n"] for completion in completions]


def test_calls_go_through_the_worker_within_the_window(start_server: StartServer) -> None:
    server = start_server(_echo, latency_s=0.05)

    async def work(pool: LLMPool, backend: HttpWorkerBackend) -> tuple[list[Completion], int, int]:
        before = backend.through_worker
        results = await asyncio.gather(*(pool.complete(_request(n)) for n in range(40)))
        return list(results), backend.through_worker - before, pool.limiter.limit

    completions, through_worker, limiter_limit = _with_worker(server, 4, work)
    assert _numbers(completions) == list(range(40))
    assert through_worker == 40
    # The pool hands the worker calls beyond the window, and the server still never sees
    # more than the window at once.
    assert limiter_limit > 4
    assert server.max_in_flight == 4
    assert all(completion.latency_s >= 0.05 for completion in completions)


def test_the_worker_starts_after_its_calls_and_ends_with_the_run(
    start_server: StartServer,
) -> None:
    server = start_server(_echo)

    async def go() -> tuple[int, int, int | None]:
        backend = _backend(server, start_after_calls=3)
        pool = _pool(backend, window=2)
        try:
            for number in range(3):
                await pool.complete(_request(number))
            started_before = backend.worker_pid
            await _worker_ready(pool, backend)
            pid = backend.worker_pid
            assert pid is not None
        finally:
            await pool.aclose()
        return started_before or 0, pid, backend.worker_pid

    started_before, pid, after_close = asyncio.run(go())
    assert started_before == 0  # in-process for its first three calls
    assert after_close is None
    with pytest.raises(ProcessLookupError):  # it exited (and was reaped) at aclose
        os.kill(pid, 0)


def test_a_429_holds_the_worker_queue_until_the_pause_ends(start_server: StartServer) -> None:
    pause_s = 0.6
    refused: list[float] = []
    servers: list[FakeOpenAIServer] = []

    def responder(body: dict[str, Any]) -> Reply:
        number = int(body["messages"][0]["content"].split()[1])
        if not refused and number == 3:
            # Refused once the window is full, with the other calls of that round still out
            # (0.3 s each): any request after it can only come from the worker's queue.
            deadline = time.monotonic() + 5
            while servers[0].in_flight < 4 and time.monotonic() < deadline:
                time.sleep(0.001)
            refused.append(time.monotonic())
            return Reply(status=429, headers={"retry-after": str(pause_s)},
                         error_body={"error": {"message": "slow down"}})
        return Reply(_echo(body).content, delay_s=0.3 if number < 3 else 0.05)

    servers.append(server := start_server(responder))

    async def work(pool: LLMPool, _: HttpWorkerBackend) -> list[Completion]:
        return list(await asyncio.gather(*(pool.complete(_request(n)) for n in range(24))))

    completions = _with_worker(server, 4, work)
    assert _numbers(completions) == list(range(24))
    (refused_at,) = refused
    # The calls the worker held in its queue when the 429 came back wait for the pause too.
    sent_during_pause = [seen for seen in server.chat_requests()
                         if refused_at < seen.started < refused_at + pause_s * 0.9]
    assert sent_during_pause == []


def test_a_cancelled_call_never_leaves_the_worker_queue(start_server: StartServer) -> None:
    server = start_server(_echo, latency_s=0.3)

    async def work(pool: LLMPool, _: HttpWorkerBackend) -> None:
        first = asyncio.create_task(pool.complete(_request(1)))
        queued = asyncio.create_task(pool.complete(_request(2)))
        await asyncio.sleep(0.1)  # both handed to the worker: one sent, one queued
        queued.cancel()
        await first
        await asyncio.sleep(0.4)  # the queued call would have gone out by now

    _with_worker(server, 1, work)
    sent = [seen.body["messages"][0]["content"] for seen in server.chat_requests()]
    assert "call 1 ✓" in sent
    assert "call 2 ✓" not in sent


def test_a_worker_that_dies_loses_no_call(start_server: StartServer) -> None:
    server = start_server(_echo, latency_s=0.2)

    async def work(pool: LLMPool, backend: HttpWorkerBackend) -> list[Completion]:
        pid = backend.worker_pid
        assert pid is not None
        calls = [asyncio.create_task(pool.complete(_request(n))) for n in range(12)]
        await asyncio.sleep(0.1)  # four in flight at the server, the rest queued
        os.kill(pid, signal.SIGKILL)
        return list(await asyncio.gather(*calls))

    completions = _with_worker(server, 4, work)
    assert _numbers(completions) == list(range(12))  # retried in-process, each answered


def test_the_switch_keeps_in_process_calls_in_the_window(start_server: StartServer) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        number = int(body["messages"][0]["content"].split()[1])
        # Three long calls sent in-process are still out when the worker comes up.
        return Reply(_echo(body).content, delay_s=2.5 if number in (1, 2, 3) else 0.05)

    server = start_server(responder)

    async def go() -> tuple[list[Completion], int]:
        backend = _backend(server, start_after_calls=2)
        pool = _pool(backend, window=4)
        try:
            # The worker may have only what those leave of the window.
            results = await asyncio.gather(*(pool.complete(_request(n)) for n in range(40)))
            return list(results), backend.through_worker
        finally:
            await pool.aclose()

    completions, through_worker = asyncio.run(go())
    assert _numbers(completions) == list(range(40))
    assert through_worker > 0
    assert server.max_in_flight == 4


def test_a_429_that_changes_no_window_still_lets_the_worker_go_on(
    start_server: StartServer,
) -> None:
    refused: set[str] = set()

    def responder(body: dict[str, Any]) -> Reply:
        text = body["messages"][0]["content"]
        if text.split()[1] in ("1", "2") and text not in refused:
            refused.add(text)  # no Retry-After: no pause, and the second 429 no backoff
            return Reply(status=429, error_body={"error": {"message": "slow down"}})
        return _echo(body)

    server = start_server(responder)

    async def work(pool: LLMPool, _: HttpWorkerBackend) -> list[Completion]:
        # One at a time, each retried through the worker, which held its queue after the 429.
        return [await asyncio.wait_for(pool.complete(_request(number)), 20)
                for number in (1, 2)]

    assert _numbers(_with_worker(server, 8, work)) == [1, 2]
    assert len(refused) == 2


def test_a_batch_through_the_worker_end_to_end(schema_server: FakeOpenAIServer,
                                               make_image: Any, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="persona_foundry.llm.http_worker")
    out = tmp_path / "out"
    images = [make_image(f"p{number}.png") for number in range(4)]
    result = CliRunner().invoke(app, ["persona", *map(str, images), "--out", str(out)],
                                env={**env(schema_server), "HTTP_WORKER": "on"})
    assert result.exit_code == 0, result.output
    for image in images:
        card = json.loads((out / "personas" / f"{image.stem}_persona.json").read_text("utf-8"))
        stages = card["data"]["extensions"]["persona_foundry"]["stages"]
        assert {name: stage["status"] for name, stage in stages.items()} == {
            stage.name: "ok" for stage in STAGES}
    (sent,) = [record.getMessage() for record in caplog.records
               if record.getMessage().startswith("the HTTP worker sent")]
    assert sent == f"the HTTP worker sent {len(images) * len(STAGES)} of this run's calls"
