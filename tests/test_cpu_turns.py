"""The pool's CPU turns: one piece of a call's work per loop iteration, after its I/O."""

from __future__ import annotations

import asyncio
import itertools
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from pydantic import BaseModel

from openai_server import FakeOpenAIServer, Reply
from persona_foundry.ledger import open_ledger
from persona_foundry.llm.client import ChatRequest, OpenAIBackend
from persona_foundry.llm.pool import CpuTurns, LLMPool
from persona_foundry.llm.structured import CallTags, call_structured, json_schema_for


async def _order(turn: Callable[[], Awaitable[None]], replies: int = 4) -> list[str]:
    """What runs in which order while `replies` callers wait for their turn at once and a
    socket stays readable (its reader runs once in every loop iteration)."""
    order: list[str] = []
    ours, theirs = socket.socketpair()
    theirs.send(b"x")  # never read: readable on every iteration
    loop = asyncio.get_running_loop()
    loop.add_reader(ours, order.append, "io")

    async def caller(number: int) -> None:
        await turn()
        order.append(f"reply {number}")

    try:
        await asyncio.gather(*(caller(number) for number in range(replies)))
    finally:
        loop.remove_reader(ours)
        ours.close()
        theirs.close()
    return order


def _adjacent_replies(order: list[str]) -> int:
    return sum(1 for one, two in itertools.pairwise(order)
               if one.startswith("reply") and two.startswith("reply"))


def test_one_turn_per_iteration_each_after_the_io_of_it() -> None:
    order = asyncio.run(_order(CpuTurns().take))
    assert [entry for entry in order if entry != "io"] == [f"reply {n}" for n in range(4)]
    assert _adjacent_replies(order) == 0


def test_without_turns_the_work_runs_back_to_back() -> None:
    """The property above is the turns': a plain yield lets every piece run in one iteration."""
    order = asyncio.run(_order(lambda: asyncio.sleep(0)))
    assert _adjacent_replies(order) == 3


def test_a_cancelled_caller_does_not_hold_up_the_others() -> None:
    async def scenario() -> list[int]:
        turns, passed = CpuTurns(), []

        async def caller(number: int) -> None:
            await turns.take()
            passed.append(number)

        tasks = [asyncio.create_task(caller(number)) for number in range(3)]
        await asyncio.sleep(0)  # all three are waiting
        tasks[0].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return passed

    assert asyncio.run(scenario()) == [1, 2]


def test_turns_outlive_a_loop_that_ended_with_a_caller_waiting() -> None:
    turns = CpuTurns()
    ended = asyncio.new_event_loop()
    waiting = ended.create_task(turns.take())
    ended.call_soon(ended.stop)  # after the caller asked for its turn, before it came
    ended.run_forever()
    ended.close()
    assert not waiting.done()

    async def next_run() -> None:
        await asyncio.wait_for(turns.take(), timeout=5)

    asyncio.run(next_run())  # would wait forever on the ended loop's timer


class _Answer(BaseModel):
    answer: int


class _StoppedWhileWaiting(CpuTurns):
    """The run is stopped (its task cancelled) while a paid reply waits for its turn."""

    async def take_deferring_cancel(self) -> asyncio.CancelledError | None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        return await super().take_deferring_cancel()


@pytest.mark.parametrize(("content", "status"), [('{"answer": 4}', "ok"), ("not JSON", "invalid")])
def test_a_paid_reply_is_logged_before_the_stop_is_raised(tmp_path: Path, content: str,
                                                          status: str) -> None:
    server = FakeOpenAIServer(lambda body: Reply(content)).start()
    ledger = open_ledger(tmp_path / "ledger.db")
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "2 + 2?"}],
                          schema_name="answer", json_schema=json_schema_for(_Answer),
                          temperature=0.0, max_tokens=50)

    async def stopped_call() -> None:
        backend = OpenAIBackend(base_url=server.base_url, api_key="k", timeout_s=10)
        pool = LLMPool(backend, max_concurrent=2, max_attempts=1)
        try:
            await call_structured(_Answer, request, pool=pool, ledger=ledger,
                                  tags=CallTags("run", "ava", "answer"), max_reasks=2,
                                  turns=_StoppedWhileWaiting())
        finally:
            await backend.aclose()

    try:
        with pytest.raises(asyncio.CancelledError):
            asyncio.run(stopped_call())
        assert len(server.chat_requests()) == 1  # no re-ask went out after the stop
    finally:
        server.stop()
        ledger.close()
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        assert [row[0] for row in db.execute("SELECT status FROM calls")] == [status]
        cached = db.execute("SELECT output_json FROM cache").fetchall()
    assert cached == ([('{"answer":4}',)] if status == "ok" else [])
