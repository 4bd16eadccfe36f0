"""Stage 7, character book: SillyTavern-style lorebook entries about the persona's world."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ..llm.schema_edit import with_keywords
from . import core
from .base import (
    InputParam,
    Message,
    Stage,
    StageContext,
    Word,
    stage_messages,
)

NAME = "lorebook"
ENTRIES = "lorebook_entries"  # the input saying how many entries were asked for
MAX_ENTRIES = 20
# One topic per entry keeps entries distinct, which small models otherwise fail at.
ENTRY_TOPICS = (
    "their home and neighbourhood",
    "their work or studies",
    "the person closest to them",
    "their favourite hobby",
    "an event that shaped them",
    "a running joke or habit their followers know",
    "a place they love to go",
    "a rival or someone they clash with",
    "a goal they are working towards",
    "a possession that matters to them",
)


class LoreEntry(BaseModel):
    """One lorebook entry: shown to a chat model when a key word comes up."""

    keys: list[Word] = Field(min_length=1, max_length=4, description="trigger words")
    comment: str = Field(max_length=60, description="short title of the entry")
    content: str = Field(min_length=1, max_length=400, description="what the entry says")

    @field_validator("keys", mode="after")
    @classmethod
    def _non_empty_keys(cls, keys: list[str]) -> list[str]:
        cleaned = [key.strip() for key in keys if key.strip()]
        if not cleaned:
            raise ValueError("each entry needs at least one trigger word")
        return cleaned


class CharacterBook(BaseModel):
    """The persona's lorebook."""

    entries: list[LoreEntry] = Field(
        min_length=1, max_length=MAX_ENTRIES, description="people, places, events, habits"
    )

    @field_validator("entries", mode="after")
    @classmethod
    def _requested_count(cls, entries: list[LoreEntry], info: ValidationInfo) -> list[LoreEntry]:
        wanted = (info.context or {}).get(ENTRIES)
        if wanted is None:
            return entries
        distinct = {" ".join(entry.content.lower().split()) for entry in entries}
        if len(distinct) < len(entries):
            raise ValueError("every entry must be about something different; some repeat")
        if len(entries) < wanted:
            raise ValueError(f"write exactly {wanted} entries, got {len(entries)}")
        return entries[:wanted]


def build_messages(ctx: StageContext) -> list[Message]:
    """Ask for the requested number of lorebook entries."""
    count: int = ctx.inputs[ENTRIES]
    topics = "\n".join(
        f"{number}. {ENTRY_TOPICS[(number - 1) % len(ENTRY_TOPICS)]}"
        for number in range(1, count + 1)
    )
    return stage_messages(
        ctx, role="You write lorebooks (world info) for character cards.",
        task=f"Write exactly {count} lorebook entries about this persona's world, one per "
        "topic below, in this order. Never repeat a sentence across entries.",
        stage=STAGE, extra=(("Topics", topics),),
    )


def exact_entry_count(schema: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
    """Pin the entry count in the schema so constrained decoders produce exactly that many."""
    count: int = ctx.inputs[ENTRIES]
    return with_keywords(schema, ("entries",), minItems=count, maxItems=count)


STAGE = Stage(
    name=NAME, depends_on=(core.NAME,), output_model=CharacterBook,
    build_messages=build_messages, estimated_s=25,
    adjust_schema=exact_entry_count,
    inputs=(InputParam(ENTRIES, "how many entries to write (LOREBOOK_ENTRIES)", default=6),),
)
