"""The embedded model's KV cache budget: calls start only while their worst case fits."""

from __future__ import annotations

import asyncio

from persona_foundry.llm.client import ChatRequest
from persona_foundry.llm.local import ContextBudget


def test_a_call_that_does_not_fit_waits_for_the_cache_to_free() -> None:
    async def scenario() -> list[str]:
        budget, events = ContextBudget(1000), []

        async def call(name: str, tokens: int, seconds: float) -> None:
            async with budget.hold(tokens):
                events.append(f"{name} starts")
                await asyncio.sleep(seconds)
                events.append(f"{name} ends")

        await asyncio.gather(call("a", 600, 0.05), call("b", 300, 0.01), call("c", 600, 0.01),
                             call("huge", 5000, 0.01))
        assert budget.free == 1000
        return events

    events = asyncio.run(scenario())
    # a and b fit together (900); c (600) waits for a, then huge (more than the whole cache)
    # runs alone.
    assert events.index("c starts") > events.index("a ends")
    assert events.index("b starts") < events.index("a ends")
    start = events.index("huge starts")
    assert {e for e in events[:start] if e.endswith("ends")} == {"a ends", "b ends", "c ends"}
    assert events[start + 1] == "huge ends"


def _request(content: str, max_tokens: int) -> ChatRequest:
    return ChatRequest(model="m", messages=[{"role": "user", "content": content}],
                       schema_name="s", json_schema={}, temperature=0.5, max_tokens=max_tokens)


def test_a_calls_need_counts_its_prompt_and_everything_it_may_write() -> None:
    assert ContextBudget.need(_request("x" * 3000, 500)) >= 3000 // 3 + 500
    assert ContextBudget.need(_request("x" * 3000, 900)) == ContextBudget.need(
        _request("x" * 3000, 500)) + 400


def test_a_cjk_prompt_is_not_taken_for_a_third_of_its_tokens() -> None:
    # A CJK character is a token or more; counted as a third of one, a Japanese persona's
    # calls would be admitted beside each other and overfill the cache.
    assert ContextBudget.need(_request("東" * 1000, 0)) >= 1000
