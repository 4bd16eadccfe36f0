"""Stage 2, tweet strategy: what the persona posts, how often, when and in which tone."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from . import core
from .base import (
    Message,
    Stage,
    StageContext,
    Word,
    stage_messages,
)

NAME = "strategy"
CLOCK_PATTERN = r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$"
_CLOCK = re.compile(CLOCK_PATTERN)
ClockTime = Annotated[str, Field(max_length=5, pattern=CLOCK_PATTERN)]


class ContentPillar(BaseModel):
    """One recurring theme of the persona's posts."""

    name: str = Field(min_length=1, max_length=40, description="pillar name")
    description: str = Field(max_length=120, description="what posts in this pillar are about")
    share_percent: int = Field(ge=0, le=100, description="share of all posts, percent")

    @field_validator("share_percent", mode="before")
    @classmethod
    def _clamp_share(cls, value: object) -> object:
        # Shares are rescaled to sum to 100 anyway; an out-of-range one is just clamped first.
        if isinstance(value, int) and not isinstance(value, bool):
            return min(max(value, 0), 100)
        return value


class TweetStrategy(BaseModel):
    """The persona's posting plan."""

    pillars: list[ContentPillar] = Field(
        min_length=2, max_length=5, description="content pillars; shares sum to 100"
    )
    posts_per_day: float = Field(ge=0.2, le=20, description="average posts per day")
    posting_times: list[ClockTime] = Field(
        min_length=1, max_length=6, description="usual local posting times, HH:MM 24h"
    )
    tone: str = Field(max_length=200, description="overall tone of the posts")
    max_hashtags_per_tweet: int = Field(ge=0, le=5, description="most hashtags in one post")
    favorite_hashtags: list[Word] = Field(max_length=6, description="hashtags they often use")
    emoji_use: Literal["none", "rare", "moderate", "heavy"] = Field(description="emoji habit")
    topics_to_avoid: list[Word] = Field(max_length=6, description="topics they never post about")

    @field_validator("posts_per_day", "max_hashtags_per_tweet", mode="before")
    @classmethod
    def _clamp(cls, value: object, info: ValidationInfo) -> object:
        # Grammars do not enforce numeric bounds; a count that is merely too big is clamped.
        bounds = {"posts_per_day": (0.2, 20), "max_hashtags_per_tweet": (0, 5)}
        low, high = bounds[str(info.field_name)]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return min(max(value, low), high)
        return value

    @field_validator("posting_times", mode="after")
    @classmethod
    def _clock_times(cls, times: list[str]) -> list[str]:
        valid = [f"{int(m[1]):02d}:{m[2]}" for t in times if (m := _CLOCK.match(t.strip()))]
        if not valid:
            raise ValueError(f"posting times must look like 18:30, got {times}")
        return sorted(set(valid))

    @field_validator("favorite_hashtags", mode="after")
    @classmethod
    def _hashtags(cls, tags: list[str]) -> list[str]:
        cleaned = ("#" + tag.strip().lstrip("#").replace(" ", "")[:30] for tag in tags)
        return [tag for tag in cleaned if len(tag) > 1]

    @model_validator(mode="after")
    def _shares_sum_to_100(self) -> TweetStrategy:
        # Models round; rescale rather than re-ask for a mix that is off by a few points.
        for pillar in self.pillars:
            pillar.share_percent = max(1, pillar.share_percent)
        total = sum(pillar.share_percent for pillar in self.pillars)
        if total != 100:
            for pillar in self.pillars:
                pillar.share_percent = max(1, round(pillar.share_percent * 100 / total))
            self.pillars[0].share_percent += 100 - sum(p.share_percent for p in self.pillars)
        return self


def build_messages(ctx: StageContext) -> list[Message]:
    """Ask for a posting strategy that fits the core persona."""
    return stage_messages(
        ctx, role="You are a social-media strategist for one persona.",
        task="Design this persona's X/Twitter posting strategy.", stage=STAGE,
    )


STAGE = Stage(
    name=NAME, depends_on=(core.NAME,), output_model=TweetStrategy,
    build_messages=build_messages, estimated_s=15,
)
