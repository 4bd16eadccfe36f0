"""What a post call asks: the reply models, the prompt, and the schema pinned to the batch.

The prompt puts what is stable for a persona (instructions, persona, strategy, voice, examples)
first and the slots last, so providers' prompt caches (and the embedded server's KV cache) hit
across a persona's calls. Each slot line carries its own angle and opening words (`ANGLES`),
drawn from the slot's place in the month: the default offline model, told only "open
differently", opened a third of 24 posts with "Ms. Ly Thai is…" and most of the rest with
"I can't wait" (self-BLEU 0.52, 71 % of posts sharing a 6-word run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from ..llm.schema_edit import edit_node, one_item_each, with_keywords
from ..nsfw import NSFW_RULES
from ..profile import PersonaProfile
from ..store import Calendar, CalendarEvent, Slot
from ..textchecks import EMOJI_LIMITS, MAX_WEIGHTED_LENGTH, normalize_for_comparison
from .options import TweetOptions

MAX_TEXT_CHARS = 500
# Example posts shown as voice: a few fragments of a few words each (see _voice_sample).
VOICE_SAMPLES = 3
VOICE_SAMPLE_WORDS = 8
# An image slot's photo, described in a line: longer ones cost the embedded model tokens and
# no image stage reads more (images/prompts.py adds the persona's look itself).
MAX_IMAGE_PROMPT_CHARS = 150
# What each slot's post does and the words it starts with: slot i of the month gets entry i,
# so the slots of one call, neighbours in the month, never share an opening; a retry gets one
# of RETRY_ANGLES (never the opening of another slot nearby, which its post may already use).
# Each opening is at most 2 words (the opening check compares 3) and none is the persona's name
# or "I": those were the openings the default offline model repeated.
ANGLES: tuple[tuple[str, str], ...] = (
    ("something that just happened", "Just"),
    ("a question for your followers", "Who else"),
    ("a practical tip", "Tip:"),
    ("a small confession", "Confession:"),
    ("what you are planning", "Planning"),
    ("a memory it brings back", "Years ago"),
    ("an honest opinion", "Hot take:"),
    ("what you see right now", "Right now"),
    ("a lesson you learned", "Lesson learned:"),
    ("a recommendation", "If you"),
    ("a small win", "Finally"),
    ("a funny moment", "Funny thing:"),
    ("what you are grateful for", "Grateful for"),
    ("a goal of yours", "Goal:"),
    ("a detail most people miss", "Underrated:"),
    ("today's mood", "Today"),
    ("a quick update", "Quick update:"),
    ("a favourite of yours", "My favorite"),
    ("a mistake you made", "Oops,"),
    ("a challenge to your followers", "Try this:"),
    ("a look behind the scenes", "Backstage:"),
    ("what you are reading or watching", "Currently"),
    ("a small ritual of yours", "Every"),
    ("a surprise", "Surprise:"),
)
RETRY_ANGLES: tuple[tuple[str, str], ...] = (
    ("a short story from your day", "So"),
    ("a thought you keep coming back to", "Honestly,"),
    ("a question you are asking yourself", "Why"),
    ("a small detail you noticed", "Noticed"),
    ("an invitation to your followers", "Join me"),
    ("a contrast between then and now", "Last year"),
    ("a before-and-after", "Before"),
    ("a quiet moment", "Sometimes"),
    ("a promise to yourself", "Promise:"),
    ("a bit of good news", "Good news:"),
    ("a plea for advice", "Help:"),
    ("a comparison", "Nothing beats"),
)
RETRY_ANGLE_STEP = 5
_PARTS_OF_DAY = ((5, "early morning"), (9, "morning"), (12, "midday"), (14, "afternoon"),
                 (18, "evening"), (22, "night"))


class TweetDraft(BaseModel):
    """One post for one slot."""

    slot_id: str = Field(max_length=20, description="the slot's id, exactly as given")
    # Room beyond 280: an over-long post fails its own length check and only its slot is
    # regenerated, instead of the whole batch failing validation.
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS,
                      description="the post, at most 280 characters")
    image_prompt: str = Field(
        max_length=300,
        description="for image slots: the photo to attach, described in a line (no URL); "
                    "else empty",
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


def _voice_sample(post: str) -> str:
    """A fragment of an example post, as a sample of its voice: a run of words from inside it,
    never its opening nor its hashtags, and never whole.

    Shown whole (hashtags stripped or not), the default offline model wrote the example posts
    again, reworded, for slot after slot whatever each slot was about (bench/quality.py, 24
    posts: most drafts rejected as near duplicates of an example); a fragment gives word choice
    and rhythm but no post to rewrite.
    """
    words = [word for word in post.split() if not word.startswith("#")]
    size = min(VOICE_SAMPLE_WORDS, len(words) // 2)  # at most half of a short post
    start = len(words) // 3
    return "… " + " ".join(words[start:start + size]) + " …"


def _persona_block(profile: PersonaProfile) -> str:
    strategy = profile.strategy.model_dump(mode="json")
    parts = [f"## Persona\n{profile.summary}", f"## Strategy\n{json.dumps(strategy)}"]
    if profile.authenticity:
        parts.append(f"## Habits\n{profile.authenticity.model_dump_json()}")
    if profile.example_posts:
        parts.append("## How they sound (fragments of earlier posts, for tone only: never reuse "
                     "their words or subjects)\n" + "\n".join(
                         f"- {_voice_sample(post)}"
                         for post in profile.example_posts[:VOICE_SAMPLES]))
    if profile.visual:
        parts.append(f"## Their look, for image prompts\n{profile.visual.prompt_base}")
    return "\n\n".join(parts)


def _rules_line(profile: PersonaProfile) -> str:
    """The strategy's habits as one plain instruction (the checks hold every post to them)."""
    strategy = profile.strategy
    limit = EMOJI_LIMITS.get(strategy.emoji_use)
    emoji = "any number of emoji" if limit is None else f"at most {limit} emoji"
    return (f"Each post: by you, in the first person; at most {strategy.max_hashtags_per_tweet} "
            f"hashtag(s), {emoji}; about its own slot only, with its angle, starting with its "
            "words.")


def _when(slot: Slot) -> str:
    """'Friday evening': the slot's moment as a person thinks of it (a timestamp in the prompt
    was copied into posts)."""
    moment = datetime.fromisoformat(slot.scheduled_at)
    part = next((name for hour, name in reversed(_PARTS_OF_DAY) if moment.hour >= hour), "night")
    return f"{moment.strftime('%A')} {part}"


def _subject(slot: Slot, event: CalendarEvent | None, name: str) -> str:
    """The slot's pillar and its event or theme; an event described with the persona's name
    (in the third person, which posts then copied) is given by its title alone."""
    if event is None:
        return slot.pillar if slot.theme == slot.pillar else f"{slot.pillar}, theme {slot.theme}"
    named = normalize_for_comparison(name).split()[-1:]
    told = set(normalize_for_comparison(event.description).split())
    about = event.title if not event.description or set(named) & told else (
        f"{event.title}: {event.description}")
    return f"{slot.pillar}, on {about}"


def _slot_line(slot: Slot, event: CalendarEvent | None, angle: tuple[str, str], name: str,
               feedback: dict[str, str]) -> str:
    """A slot's subject first (what small models attend to most), then its angle and opening."""
    photo = ", with a photo" if slot.format == "image" else ""
    line = (f"- id {slot.id} ({_when(slot)}{photo}): {_subject(slot, event, name)}. "
            f"Angle: {angle[0]}; start with \"{angle[1]}\".")
    if slot.id in feedback:
        line += f" {feedback[slot.id]}"
    return line


def _angle(position: int, attempts: int) -> tuple[str, str]:
    if not attempts:
        return ANGLES[position % len(ANGLES)]
    return RETRY_ANGLES[(position + (attempts - 1) * RETRY_ANGLE_STEP) % len(RETRY_ANGLES)]


def tweet_messages(profile: PersonaProfile, calendar: Calendar, slots: list[Slot],
                   options: TweetOptions, feedback: dict[str, str],
                   attempts: Mapping[str, int] | None = None) -> list[dict[str, str]]:
    """System and persona first (identical for every call of a persona), the slots last.

    `attempts`: each slot's drafts so far; a retry gets another angle and opening.
    """
    name = profile.name
    system = (
        f"You are {name} (@{profile.handle}) writing your own posts on X: write every post as "
        f"{name}, in the first person (I, my, me), as you would post it; never write about "
        f"{name} in the third person and never start with your own name. Write every post in "
        f"{options.language}, one or two short sentences, at most 280 characters. Every person "
        f"is an adult. {NSFW_RULES[options.nsfw_level]} Reply with one JSON object that matches "
        "the given JSON schema, and nothing else: one post per slot, with the slot's id."
    )
    events = {event.id: event for event in calendar.events}
    positions = {slot.id: number for number, slot in enumerate(calendar.slots)}
    tried = attempts or {}
    lines = [_slot_line(slot, events.get(slot.event_id or ""),
                        _angle(positions.get(slot.id, 0), tried.get(slot.id, 0)), name, feedback)
             for slot in slots]
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{_persona_block(profile)}\n\n## Slots\n"
                                    f"{_rules_line(profile)}\n" + "\n".join(lines)},
    ]


def _restrict_batch(batch: list[Slot]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Ask for exactly one post per slot of `batch`, in order, and nothing else.

    Position i has the slot id `const` of slot i and the count is pinned (`one_item_each`), so
    a reply can neither skip a slot, repeat one nor invent one; a text slot's image prompt is
    pinned empty.
    """

    def one_per_slot(tweets: dict[str, Any]) -> dict[str, Any]:
        return one_item_each(tweets, [_slot_item(tweets["items"], slot) for slot in batch])

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
        return with_keywords(pinned, ("image_prompt",), minLength=1,
                             maxLength=MAX_IMAGE_PROMPT_CHARS)
    return with_keywords(pinned, ("image_prompt",), maxLength=0)
