"""Style profile of a persona-month's posts per pillar, against what the strategy asked for."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..stages.strategy import TweetStrategy
from ..textchecks import EMOJI_LIMITS, emoji_count, hashtag_count, weighted_length
from .metrics import words

_URL = re.compile(r"https?://\S+|(?<!\w)www\.\S+")
# English pronouns after normalisation (apostrophes dropped: "i'm" → "im"); other languages
# count 0, which the report says.
FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself", "im", "ive", "ill", "id",
                          "we", "us", "our", "ours", "ourselves"})
ALL_PILLARS = "(all)"


@dataclass(frozen=True)
class StyledPost:
    """What the style profile needs from one post."""

    slot_id: str
    pillar: str
    text: str


@dataclass(frozen=True)
class PillarStyle:
    """Rates of one pillar's posts, beside the strategy's asks."""

    pillar: str
    posts: int
    share: float
    target_share: float | None
    mean_length: float
    hashtags_per_post: float
    emoji_per_post: float
    url_rate: float
    question_rate: float
    first_person_rate: float
    habits_met: float  # share within the hashtag limit and the emoji habit


def habits_kept(text: str, strategy: TweetStrategy) -> bool:
    """The post keeps the strategy's hashtag limit and emoji habit."""
    limit = EMOJI_LIMITS.get(strategy.emoji_use)
    return (hashtag_count(text) <= strategy.max_hashtags_per_tweet
            and (limit is None or emoji_count(text) <= limit))


def _rate(flags: Sequence[bool | int | float]) -> float:
    return sum(float(flag) for flag in flags) / len(flags) if flags else 0.0


def pillar_style(pillar: str, posts: Sequence[StyledPost], total: int,
                 strategy: TweetStrategy) -> PillarStyle:
    """The profile of `posts` (one pillar's, or all of a month's)."""
    targets = {p.name.casefold(): p.share_percent / 100 for p in strategy.pillars}
    texts = [post.text for post in posts]
    return PillarStyle(
        pillar=pillar, posts=len(posts), share=len(posts) / total if total else 0.0,
        target_share=1.0 if pillar == ALL_PILLARS else targets.get(pillar.casefold()),
        mean_length=_rate([weighted_length(text) for text in texts]),
        hashtags_per_post=_rate([hashtag_count(text) for text in texts]),
        emoji_per_post=_rate([emoji_count(text) for text in texts]),
        url_rate=_rate([bool(_URL.search(text)) for text in texts]),
        question_rate=_rate(["?" in text for text in texts]),
        first_person_rate=_rate([bool(FIRST_PERSON & set(words(text))) for text in texts]),
        habits_met=_rate([habits_kept(text, strategy) for text in texts]),
    )


def style_profile(posts: Sequence[StyledPost], strategy: TweetStrategy) -> list[PillarStyle]:
    """One row per pillar (the strategy's first, in its order, then any other), then all."""
    order = [p.name for p in strategy.pillars]
    order += sorted({post.pillar for post in posts} - set(order))
    rows = [pillar_style(name, [p for p in posts if p.pillar == name], len(posts), strategy)
            for name in order]
    return [*rows, pillar_style(ALL_PILLARS, posts, len(posts), strategy)]
