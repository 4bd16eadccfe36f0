"""What a post call asks: the reply models, the prompt, and the schema pinned to the batch.

The prompt puts what is stable for a persona (instructions, persona, strategy, voice, examples)
first and the slots last, so providers' prompt caches hit across a persona's calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ..llm.schema_edit import edit_node, with_keywords
from ..nsfw import NSFW_RULES
from ..profile import PersonaProfile
from ..store import Calendar, Slot
from ..textchecks import MAX_WEIGHTED_LENGTH
from .options import TweetOptions

MAX_TEXT_CHARS = 500


class TweetDraft(BaseModel):
    """One post for one slot."""

    slot_id: str = Field(max_length=20, description="the slot's id, exactly as given")
    # Room beyond 280: an over-long post fails its own length check and only its slot is
    # regenerated, instead of the whole batch failing validation.
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS,
                      description="the post, at most 280 characters")
    image_prompt: str = Field(
        max_length=300, description="for image slots: the photo to attach; else empty"
    )


class TweetBatch(BaseModel):
    """Posts for the slots of one call."""

    tweets: list[TweetDraft] = Field(min_length=1, max_length=32, description="one per slot")

    @field_validator("tweets", mode="after")
    @classmethod
    def _known_slots(cls, tweets: list[TweetDraft], info: ValidationInfo) -> list[TweetDraft]:
        wanted = set((info.context or {}).get("slot_ids", []))
        kept = [tweet for tweet in tweets if not wanted or tweet.slot_id in wanted]
        if not kept:
            raise ValueError(f"use the given slot ids: {sorted(wanted)}")
        return list({tweet.slot_id: tweet for tweet in kept}.values())


def _persona_block(profile: PersonaProfile) -> str:
    strategy = profile.strategy.model_dump(mode="json")
    parts = [f"## Persona\n{profile.summary}", f"## Strategy\n{json.dumps(strategy)}"]
    if profile.authenticity:
        parts.append(f"## Habits\n{profile.authenticity.model_dump_json()}")
    if profile.example_posts:
        parts.append("## Their earlier posts (match the voice, never repeat them)\n"
                     + "\n".join(f"- {post}" for post in profile.example_posts))
    if profile.visual:
        parts.append(f"## Their look, for image prompts\n{profile.visual.prompt_base}")
    return "\n\n".join(parts)


def tweet_messages(profile: PersonaProfile, calendar: Calendar, slots: list[Slot],
                   options: TweetOptions, feedback: dict[str, str]) -> list[dict[str, str]]:
    """System and persona first (identical for every call of a persona), the slots last."""
    system = (
        f"You are {profile.name} (@{profile.handle}) writing your own posts on X. Write every post "
        f"in {options.language}, at most 280 characters, in your own voice. Every person is an "
        f"adult. {NSFW_RULES[options.nsfw_level]} Reply with one JSON object that matches the "
        "given JSON schema, and nothing else: one post per slot, with the slot's id."
    )
    events = {event.id: event for event in calendar.events}
    lines = []
    for slot in slots:
        event = events.get(slot.event_id or "")
        about = f"{event.title}: {event.description}" if event else slot.theme
        line = (f"- id {slot.id}, {slot.scheduled_at}, pillar {slot.pillar}, about {about}, "
                f"format {slot.format}")
        if slot.id in feedback:
            line += f". {feedback[slot.id]}"
        lines.append(line)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{_persona_block(profile)}\n\n## Slots\n" + "\n".join(lines)},
    ]


def _restrict_batch(batch: list[Slot]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Ask for exactly one post per slot of `batch`, in order, and nothing else.

    `prefixItems` gives position i the slot id `const` of slot i, and `minItems` = `maxItems` =
    the batch size, so a reply can neither skip a slot, repeat one nor invent one; a text slot's
    image prompt is pinned empty. No `items` beside it: llama.cpp's LLGuidance then applies
    `items` to every position and ignores `prefixItems` (seen with xllamacpp 2026.10), and with
    the count pinned no position is left for `items` to govern anyway.
    """

    def one_per_slot(tweets: dict[str, Any]) -> dict[str, Any]:
        kept = {key: value for key, value in tweets.items() if key != "items"}
        return {**kept, "prefixItems": [_slot_item(tweets["items"], slot) for slot in batch],
                "minItems": len(batch), "maxItems": len(batch)}

    def adjust(schema: dict[str, Any]) -> dict[str, Any]:
        return edit_node(schema, ("tweets",), one_per_slot)

    return adjust


restrict_batch = _restrict_batch


def _slot_item(item: dict[str, Any], slot: Slot) -> dict[str, Any]:
    """The item schema of one slot's post: its id fixed, at most MAX_WEIGHTED_LENGTH characters
    (a weighted length can still pass it: CJK and emoji weigh 2; that slot alone is redone), and
    an image prompt that an image slot must have and a text slot must leave empty."""
    pinned = with_keywords(item, ("slot_id",), const=slot.id)
    pinned = with_keywords(pinned, ("text",), maxLength=MAX_WEIGHTED_LENGTH)
    if slot.format == "image":
        return with_keywords(pinned, ("image_prompt",), minLength=1)
    return with_keywords(pinned, ("image_prompt",), maxLength=0)
