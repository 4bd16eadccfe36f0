"""Stage 1, core persona: who this is, read off the image (or its visual facts)."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import available_timezones

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from ..llm.schema_edit import with_keywords
from .base import (
    InputParam,
    Message,
    Stage,
    StageContext,
    Word,
    field_guide,
    system_message,
    user_message,
    with_image,
)

NAME = "core"
_HANDLE_CHARS = re.compile(r"[^A-Za-z0-9_]")
MAX_HANDLE_CHARS = 15
HANDLE_PATTERN = rf"^@?[A-Za-z0-9_]{{1,{MAX_HANDLE_CHARS}}}$"
MIN_AGE, MAX_AGE = 18, 90
_TIMEZONES = frozenset(available_timezones())
# The age estimator is rough; a persona far outside its guess contradicts the picture.
AGE_TOLERANCE_YEARS = 10


class CorePersona(BaseModel):
    """The persona's identity; every other stage builds on it."""

    name: str = Field(min_length=1, max_length=60, description="full name")
    # The pattern is what the schema asks for; the validator still cleans a reply from a
    # backend that ignores schemas ("@Ava Orbits" → "Ava_Orbits").
    handle: str = Field(
        min_length=1, max_length=16, description="X/Twitter handle, letters digits _ only",
        json_schema_extra={"pattern": HANDLE_PATTERN},
    )
    age: int = Field(ge=MIN_AGE, le=MAX_AGE, description="age in years, 18 or over")
    gender: str = Field(max_length=30, description="gender identity")
    location: str = Field(max_length=80, description="city, country where they live")
    timezone: str = Field(max_length=40, description="IANA time zone, e.g. Europe/Madrid")
    occupation: str = Field(max_length=80, description="job or main activity")
    personality: list[Word] = Field(
        min_length=1, max_length=6, description="personality traits, a word or two each"
    )
    backstory: str = Field(max_length=600, description="life story in a few sentences")
    interests: list[Word] = Field(min_length=1, max_length=8, description="interests and hobbies")
    voice: str = Field(max_length=300, description="how they talk and write online")
    bio: str = Field(max_length=160, description="profile bio, at most 160 characters")
    greeting: str = Field(max_length=300, description="their first message to a new follower")
    appearance: str = Field(max_length=250, description="what they look like")

    @field_validator("age", mode="after")
    @classmethod
    def _matches_the_image(cls, age: int, info: ValidationInfo) -> int:
        apparent = (info.context or {}).get("apparent_age")
        if apparent is None:
            return age
        low, high = age_bounds(apparent)
        if not low <= age <= high:
            raise ValueError(
                f"the person in the image looks about {apparent}: choose an age from {low} "
                f"to {high}"
            )
        return age

    @model_validator(mode="before")
    @classmethod
    def _drawn_identity(cls, data: Any, info: ValidationInfo) -> Any:
        # The name and handle were drawn and claimed before the call (unique by construction);
        # the schema pins them, and a backend that ignores schemas still gets them, not a re-ask.
        context = info.context or {}
        if isinstance(data, dict) and context.get("name"):
            return {**data, "name": context["name"], "handle": context["handle"]}
        return data

    @field_validator("personality", "interests", mode="after")
    @classmethod
    def _short_items(cls, items: list[str]) -> list[str]:
        return [item.strip()[:40] for item in items if item.strip()]

    @field_validator("handle", mode="after")
    @classmethod
    def _clean_handle(cls, handle: str) -> str:
        cleaned = _HANDLE_CHARS.sub("", handle.strip().lstrip("@").replace(" ", "_"))
        if not cleaned:
            raise ValueError("the handle needs letters, digits or _")
        return cleaned[:MAX_HANDLE_CHARS]

    @field_validator("timezone", mode="after")
    @classmethod
    def _known_timezone(cls, timezone: str) -> str:
        # Small models invent zones ("CET+1"); UTC is a safe, honest default for scheduling.
        return timezone if timezone in _TIMEZONES else "UTC"


def age_bounds(apparent_age: int) -> tuple[int, int]:
    """The ages a persona whose photo looks `apparent_age` may have."""
    low = max(MIN_AGE, apparent_age - AGE_TOLERANCE_YEARS)
    return low, max(low, min(MAX_AGE, apparent_age + AGE_TOLERANCE_YEARS))


def ages_the_image_allows(schema: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
    """State the photo's age range in the schema, so a constrained decoder keeps to it."""
    apparent: int | None = ctx.inputs["apparent_age"]
    if apparent is None:
        return schema
    low, high = age_bounds(apparent)
    return with_keywords(schema, ("age",), minimum=low, maximum=high)


def drawn_identity(schema: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
    """Pin the drawn name and handle (`const`): a schema-following backend writes exactly them."""
    name, handle = ctx.inputs["name"], ctx.inputs["handle"]
    if not name or not handle:
        return schema
    schema = with_keywords(schema, ("name",), const=name)
    return with_keywords(schema, ("handle",), const=handle)


def core_schema(schema: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
    """The core schema for this persona: its photo's ages, its drawn identity."""
    return drawn_identity(ages_the_image_allows(schema, ctx), ctx)


def build_messages(ctx: StageContext) -> list[Message]:
    """Describe the image (or its facts) and ask for the core persona."""
    persona, inputs = ctx.persona, ctx.inputs
    task = (
        "Invent a believable social-media persona for the person in this character image: "
        "a real-seeming adult with a specific life, not a generic influencer."
    )
    name, handle = inputs["name"], inputs["handle"]
    identity = f"- name: {name}\n- handle: @{handle}" if name else ""
    must_match = []
    if inputs["apparent_gender"]:
        must_match.append(f"gender presentation: {inputs['apparent_gender']}")
    if inputs["apparent_age"] is not None:
        must_match.append(f"age: about {max(18, inputs['apparent_age'])}")
    facts = (
        "The image is attached." if persona.image_data_url else
        "You cannot see the image; these facts were measured from it:\n" + persona.visual_facts
    )
    text = user_message(
        ("Task", task),
        ("Fields", field_guide(CorePersona)),
        ("Image", f"file name: {persona.image_name}\n{facts}"),
        ("The persona must match the image", "\n".join(must_match)),
        ("Seed attributes (follow them; the image wins where they disagree)",
         inputs["draw"] or ""),
        ("Identity (already chosen and unique: use exactly this name and handle)", identity),
        ("Creator's hint", persona.hint or ""),
    )
    return [
        system_message(ctx, "You design original characters for social media."),
        with_image(text, persona.image_data_url),
    ]


STAGE = Stage(
    name=NAME, depends_on=(), output_model=CorePersona, build_messages=build_messages,
    estimated_s=20, adjust_schema=core_schema,
    sees_image=True, uses_vision_model=True, describes_member=True, required=True,
    inputs=(
        InputParam("apparent_age", "the youngest face's apparent age (None: no face)"),
        InputParam("apparent_gender", "the first face's apparent gender (None: no face)"),
        InputParam("draw", "the seed attributes drawn for the persona, as prompt lines"),
        # Drawn and claimed before the call (population.draw_identity): unique by construction.
        InputParam("name", "the persona's full name"),
        InputParam("handle", "the persona's handle, without @"),
    ),
)
