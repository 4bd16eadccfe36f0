"""Persona consistency: an LLM judge reads each post against the card and answers 0/1 with a
one-line reason ("prompt-to-line consistency", Abdulhai et al., NeurIPS 2025, arXiv 2511.00222).

Several posts go in one call (the card is the long part of the prompt, sent once per batch),
through the session like every call: routed, pooled, cached and recorded in the ledger, so a
report run twice on the same posts costs nothing the second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ..llm.schema_edit import edit_node, one_item_each, with_keywords
from ..llm.session import LLMSession
from ..profile import PersonaProfile

JUDGE_STAGE = "quality_judge"
POSTS_PER_JUDGE_CALL = 8
MAX_REASON_CHARS = 120


class Verdict(BaseModel):
    """The judge's answer for one post."""

    id: str = Field(max_length=40, description="the post's id, exactly as given")
    consistent: bool = Field(description="true only if this persona would write this post")
    reason: str = Field(max_length=MAX_REASON_CHARS, description="one line: why")


class Verdicts(BaseModel):
    """One verdict per post of the call."""

    verdicts: list[Verdict] = Field(min_length=1, max_length=POSTS_PER_JUDGE_CALL * 2,
                                    description="one per post, in order")

    @field_validator("verdicts", mode="after")
    @classmethod
    def _every_post(cls, verdicts: list[Verdict], info: ValidationInfo) -> list[Verdict]:
        wanted = list((info.context or {}).get("ids", []))
        given = {verdict.id: verdict for verdict in verdicts}
        missing = [key for key in wanted if key not in given]
        if missing:
            raise ValueError(f"give a verdict for every post id; missing: {missing}")
        return [given[key] for key in wanted] if wanted else verdicts


@dataclass(frozen=True)
class JudgedPost:
    """A post to judge: an id (the slot id) and its text."""

    id: str
    text: str


@dataclass
class JudgeRun:
    """The verdicts of a judge run and what they cost."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def pass_rate(self, ids: Sequence[str] | None = None) -> float | None:
        """Share of consistent verdicts (among `ids`); None when none was judged."""
        judged = [self.verdicts[key] for key in (ids or self.verdicts) if key in self.verdicts]
        return sum(v.consistent for v in judged) / len(judged) if judged else None


def judge_messages(profile: PersonaProfile, posts: Sequence[JudgedPost],
                   language: str) -> list[dict[str, str]]:
    """The card first (the same for every call of a persona), the posts last."""
    system = (
        "You check social-media posts against one persona's character card. For each post, "
        "consistent is true only if this persona would write it: in "
        f"{language}, in their voice and tone, true to their facts, as a finished post. It is "
        "false for a post in another language, in a generic or someone else's voice, one that "
        "contradicts the card, or one holding JSON, markup or notes to the writer. Give a "
        "one-line reason. Reply with one JSON object that matches the given JSON schema."
    )
    card = (f"## Persona\n{profile.summary}\n\n## Tone\n{profile.strategy.tone}\n\n"
            f"## Language\n{language}")
    lines = "\n".join(f"- id {post.id}: {post.text}" for post in posts)
    return [{"role": "system", "content": system},
            {"role": "user", "content": f"{card}\n\n## Posts\n{lines}"}]


def _one_verdict_each(posts: Sequence[JudgedPost]) -> Any:
    """The schema asking for exactly one verdict per post, in order, each with its id fixed."""

    def pin(array: dict[str, Any]) -> dict[str, Any]:
        return one_item_each(array, [with_keywords(array["items"], ("id",), const=post.id)
                                     for post in posts])

    return lambda schema: edit_node(schema, ("verdicts",), pin)


async def judge_batch(session: LLMSession, profile: PersonaProfile,
                      posts: Sequence[JudgedPost], language: str, run: JudgeRun) -> None:
    """One judge call for up to POSTS_PER_JUDGE_CALL posts; its verdicts go into `run`."""
    done = await session.call(
        Verdicts, judge_messages(profile, posts, language), stage=JUDGE_STAGE,
        persona=profile.key, context={"ids": [post.id for post in posts]},
        adjust_schema=_one_verdict_each(posts),
    )
    run.calls += 1
    run.cached_calls += done.from_cache
    run.prompt_tokens += done.prompt_tokens
    run.completion_tokens += done.completion_tokens
    run.verdicts.update({verdict.id: verdict for verdict in done.output.verdicts})


async def judge_posts(session: LLMSession, profile: PersonaProfile,
                      posts: Sequence[JudgedPost], language: str,
                      run: JudgeRun | None = None) -> JudgeRun:
    """Verdicts for every post, POSTS_PER_JUDGE_CALL per call, the calls under the session's
    one concurrency limit."""
    run = run or JudgeRun()
    batches = [posts[i:i + POSTS_PER_JUDGE_CALL]
               for i in range(0, len(posts), POSTS_PER_JUDGE_CALL)]
    await asyncio.gather(*(judge_batch(session, profile, batch, language, run)
                           for batch in batches))
    return run
