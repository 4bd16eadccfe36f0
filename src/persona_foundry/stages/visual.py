"""Stage 6, visual profile: one canonical look, so every generated image shows the same person."""

from __future__ import annotations

from pydantic import BaseModel, Field

from . import core
from .base import (
    Line,
    Message,
    Stage,
    StageContext,
    field_guide,
    persona_sections,
    system_message,
    user_message,
    with_image,
)

NAME = "visual"


class VisualProfile(BaseModel):
    """Appearance and photo style for text-to-image prompts."""

    appearance: str = Field(
        min_length=1, max_length=300, description="face, hair, eyes, skin, build; concrete"
    )
    signature_style: str = Field(max_length=200, description="clothes and accessories they wear")
    consistent_details: list[Line] = Field(
        max_length=6, description="details that appear in every image (a mole, a necklace)"
    )
    photo_style: str = Field(max_length=200, description="camera, lighting and framing habits")
    prompt_base: str = Field(
        min_length=1, max_length=300,
        description="comma-separated text-to-image prompt describing this exact person",
    )
    negative_prompt: str = Field(max_length=300, description="what images must not show")


def build_messages(ctx: StageContext) -> list[Message]:
    """Ask for a visual profile that matches the image and the persona."""
    persona = ctx.persona
    image = "The image is attached." if persona.image_data_url else persona.visual_facts
    message = user_message(
        ("Task", "Define this persona's canonical look for image generation."),
        ("Fields", field_guide(VisualProfile)),
        ("Source image", image),
        *persona_sections(ctx, *STAGE.depends_on),
    )
    return [
        system_message(ctx, "You are an art director keeping one character on-model."),
        with_image(message, persona.image_data_url),
    ]


STAGE = Stage(
    name=NAME, depends_on=(core.NAME,), output_model=VisualProfile,
    build_messages=build_messages, estimated_s=15, sees_image=True,
)
