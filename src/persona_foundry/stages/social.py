"""Stage 4, social network: the people and communities around the persona."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from . import core
from .base import (
    InputParam,
    Message,
    Stage,
    StageContext,
    Word,
    stage_messages,
)

NAME = "social"
PEERS = "peers"
Relation = Literal[
    "friend", "best friend", "family", "partner", "ex", "rival", "colleague", "mentor",
    "mentee", "fan", "other",
]


class Relationship(BaseModel):
    """A person in the persona's life."""

    name: str = Field(min_length=1, max_length=60, description="their name")
    handle: str = Field(max_length=16, description="their X handle, or empty")
    relation: Relation = Field(description="how they relate to the persona")
    description: str = Field(max_length=120, description="the relationship in a sentence")
    since: str = Field(max_length=30, description="since when, e.g. 2019 or college")


class SocialNetwork(BaseModel):
    """Friends, family, rivals, communities and followed accounts."""

    relationships: list[Relationship] = Field(
        min_length=2, max_length=8, description="the people who matter to them"
    )
    communities: list[Word] = Field(max_length=6, description="communities they belong to")
    follows: list[Word] = Field(max_length=8, description="accounts (or kinds) they follow")


def build_messages(ctx: StageContext) -> list[Message]:
    """Ask for the persona's social circle."""
    peers: tuple[tuple[str, str], ...] = ()
    if ctx.inputs[PEERS]:
        peers = (("People they may know from their own circle (include those who fit, with "
                  "these exact names and handles; at most 3)", ctx.inputs[PEERS]),)
    return stage_messages(
        ctx, role="You write the social world of one fictional persona.",
        task="Describe this persona's social network.", stage=STAGE, extra=peers,
    )


STAGE = Stage(
    name=NAME, depends_on=(core.NAME,), output_model=SocialNetwork,
    build_messages=build_messages, estimated_s=20,
    # Known only once every stage 1 of the persona's cohort is done: the stage waits for them.
    inputs=(InputParam(PEERS, "the batch's plausible peers, as prompt lines", default=""),),
)
