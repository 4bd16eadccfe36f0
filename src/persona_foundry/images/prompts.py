"""Visual profile + scene → the text-to-image prompt, and the seeds that make renders repeatable."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..stages.visual import VisualProfile

# Always unwanted; the persona's own negative prompt comes first.
BASE_NEGATIVE = "lowres, blurry, deformed, extra fingers, watermark, text, logo"
SFW_NEGATIVE = "nsfw, nude, explicit"
PORTRAIT_SCENE = ("portrait photo, head and shoulders, looking at the camera, neutral background, "
                  "soft even light")
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class ImagePrompt:
    """What the pipeline is asked for."""

    prompt: str
    negative_prompt: str


def _join(parts: list[str]) -> str:
    seen: set[str] = set()
    kept = []
    for part in (p.strip().strip(",").strip() for p in parts):
        if part and part.lower() not in seen:
            seen.add(part.lower())
            kept.append(part)
    return ", ".join(kept)


def compose_prompt(scene: str, visual: VisualProfile | None, fallback_subject: str, *,
                   safe_for_work: bool) -> ImagePrompt:
    """The person first (CLIP reads only ~77 tokens), then the scene, then the look's details."""
    if visual is None:
        subject, details = [fallback_subject], []
    else:
        subject = [visual.prompt_base]
        details = [*visual.consistent_details, visual.signature_style, visual.photo_style]
    negative = [visual.negative_prompt if visual else "", BASE_NEGATIVE]
    if safe_for_work:
        negative.append(SFW_NEGATIVE)
    return ImagePrompt(prompt=_join([*subject, scene, *details]), negative_prompt=_join(negative))


def persona_base_seed(persona_key: str, user_seed: int = 0) -> int:
    """One base seed per persona (and --seed), stable across machines and runs."""
    digest = hashlib.sha256(f"{persona_key}:{user_seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % MAX_SEED


def image_seed(base_seed: int, item_id: str) -> int:
    """The seed of one image: the persona's base seed moved by the tweet's (or shot's) id."""
    offset = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:4], "big")
    return (base_seed + offset) % MAX_SEED
