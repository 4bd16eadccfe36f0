"""Stage 5, authenticity: the quirks and flaws that make a persona feel like a person."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from . import core
from .base import (
    Line,
    Message,
    Stage,
    StageContext,
    stage_messages,
)

NAME = "authenticity"
Details = Annotated[list[Line], Field(min_length=1, max_length=4)]


class Authenticity(BaseModel):
    """Human texture: habits, contradictions and opinions."""

    quirks: Details = Field(description="small odd habits")
    flaws: Details = Field(description="real flaws and insecurities")
    routines: Details = Field(description="daily or weekly routines")
    running_jokes: Details = Field(description="recurring jokes with followers")
    opinions: Details = Field(description="strong or unpopular opinions")
    writing_habits: Details = Field(
        description="spelling, punctuation, capitalisation and slang habits"
    )


def build_messages(ctx: StageContext) -> list[Message]:
    """Ask for the details that make the persona believable."""
    return stage_messages(
        ctx, role="You make fictional personas feel like real, imperfect people.",
        task="Give this persona authentic human detail.", stage=STAGE,
    )


STAGE = Stage(
    name=NAME, depends_on=(core.NAME,), output_model=Authenticity,
    build_messages=build_messages, estimated_s=15,
)
