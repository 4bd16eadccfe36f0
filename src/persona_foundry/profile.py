"""A persona as the content commands see it, read from any card (ours or imported)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from .cards.exchange import load_card
from .cards.portrait import stored_source
from .cards.v2 import CharacterCardV2
from .files import persona_key, safe_slug
from .stages import authenticity, core, examples, strategy, visual
from .stages.authenticity import Authenticity
from .stages.examples import ExampleTweets
from .stages.strategy import ContentPillar, TweetStrategy
from .stages.visual import VisualProfile
from .store import PersonaExtension, extension_of, zone_named

ModelT = TypeVar("ModelT", bound=BaseModel)
DEFAULT_POSTING_TIMES = ["09:00", "19:00"]


@dataclass(frozen=True)
class PersonaProfile:
    """Name, voice, strategy and look of one persona, with safe defaults for foreign cards."""

    key: str
    card_path: Path
    name: str
    handle: str
    timezone: str
    summary: str
    strategy: TweetStrategy
    authenticity: Authenticity | None = None
    visual: VisualProfile | None = None
    example_posts: list[str] = field(default_factory=list)
    source_image: Path | None = None
    language: str = "English"  # what the card's texts were written in

    @property
    def zone(self) -> ZoneInfo:
        """The persona's time zone (UTC when the card names none we know)."""
        return zone_named(self.timezone)


def _default_strategy(card: CharacterCardV2) -> TweetStrategy:
    names = card.data.tags[:3] or ["daily life", "thoughts"]
    pillars = [ContentPillar(name=name[:40], description="", share_percent=1) for name in names]
    if len(pillars) < 2:
        pillars.append(ContentPillar(name="daily life", description="", share_percent=1))
    return TweetStrategy(
        pillars=pillars, posts_per_day=1, posting_times=DEFAULT_POSTING_TIMES, tone="natural",
        max_hashtags_per_tweet=2, favorite_hashtags=[], emoji_use="moderate", topics_to_avoid=[],
    )


def source_image_path(card_path: Path, card_extensions: dict[str, Any]) -> Path | None:
    """The image our pipeline stored for this card: inside its output folder, with the sha256
    the card records (a path a card names elsewhere is never opened: a card from a stranger
    could name any file on the user's disk, and it would go to the LLM or into images)."""
    found = stored_source(card_path, card_extensions)
    return found[0] if found else None


def load_profile(card_path: Path) -> PersonaProfile:
    """Read a card (JSON, PNG or CHARX) into the profile the calendar and tweets need."""
    card = load_card(card_path).card
    ours = extension_of(card.data.extensions) or PersonaExtension()
    plan = ours.parsed_output(strategy.NAME, TweetStrategy) or _default_strategy(card)
    posts = ours.parsed_output(examples.NAME, ExampleTweets)
    summary = json.dumps({"name": card.data.name, "description": card.data.description[:800],
                          "personality": card.data.personality[:400],
                          "voice": ours.stage_field(core.NAME, "voice")}, ensure_ascii=False)
    return PersonaProfile(
        key=persona_key(card_path), card_path=card_path, name=card.data.name,
        handle=ours.stage_field(core.NAME, "handle")
        or safe_slug(card.data.name, fallback="persona")[:15],
        timezone=ours.stage_field(core.NAME, "timezone") or "UTC", summary=summary,
        strategy=plan, authenticity=ours.parsed_output(authenticity.NAME, Authenticity),
        visual=ours.parsed_output(visual.NAME, VisualProfile),
        example_posts=[tweet.text for tweet in posts.tweets] if posts else [],
        source_image=source_image_path(card_path, card.data.extensions),
        language=ours.language or "English",
    )
