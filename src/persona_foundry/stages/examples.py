"""Stage 3, example tweets: posts in the persona's voice across their pillars."""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from . import core, strategy
from .base import (
    Message,
    Stage,
    StageContext,
    stage_messages,
)

NAME = "example_tweets"


class ExampleTweet(BaseModel):
    """One example post."""

    pillar: str = Field(max_length=40, description="the content pillar it belongs to")
    text: str = Field(min_length=1, max_length=280, description="the post, at most 280 characters")


class ExampleTweets(BaseModel):
    """Posts that show the persona's voice."""

    tweets: list[ExampleTweet] = Field(
        min_length=3, max_length=8, description="6 to 8 varied posts"
    )

    @field_validator("tweets", mode="after")
    @classmethod
    def _distinct(cls, tweets: list[ExampleTweet]) -> list[ExampleTweet]:
        seen: set[str] = set()
        unique = []
        for tweet in tweets:
            key = " ".join(tweet.text.lower().split())
            if key not in seen:
                seen.add(key)
                unique.append(tweet)
        if len(unique) < 3:
            raise ValueError("write at least 3 different posts")
        return unique


def build_messages(ctx: StageContext) -> list[Message]:
    """Ask for example posts that follow the strategy."""
    return stage_messages(
        ctx, role="You ghost-write posts for one persona, in their exact voice.",
        task="Write example X/Twitter posts across the persona's content pillars.",
        stage=STAGE,
    )


STAGE = Stage(
    name=NAME, depends_on=(core.NAME, strategy.NAME), output_model=ExampleTweets,
    build_messages=build_messages, estimated_s=25,
)
