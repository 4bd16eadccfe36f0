"""The studio's changes to posts and slots, each one locked read-modify-write through the store.

A post lives in two files: its slot in the calendar (status, time, a copy of the text) and its
record in a tweet file (the text the exports and the publisher read). A change takes the
calendar's lock first and checks there that the post is still the one the tab was shown
(`slot_version`), so two tabs, or a tab and the CLI, never overwrite each other silently: the
second gets a StaleVersionError with the current post. Moves go through `Slot.apply` (the
`MOVES` table); texts pass the generator's own checks before they are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ..store import (
    Calendar,
    Slot,
    SlotMove,
    StaleVersionError,
    TweetFile,
    TweetRecord,
    read_tweet_file,
    save_tweet_file,
    update_calendar,
    update_tweet_file,
)
from ..store.slots import can_move
from ..textchecks import PostRules, rule_problems, weighted_length
from .reading import OutputReader, PostView, slot_version

# Moves a user makes from the calendar or the editor (the publisher's moves are not theirs).
USER_MOVES: dict[str, SlotMove] = {"approve": "approve", "skip": "skip", "unskip": "unskip"}
UNMOVABLE_STATUSES = frozenset({"publishing", "posted"})
MAX_NOTE_CHARS = 500


class PostRejectedError(ValueError):
    """A text the generator's checks refuse; carries the problems."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class MoveRefusedError(ValueError):
    """A drag or a status change the calendar cannot take (two slots in one minute, …)."""


@dataclass(frozen=True)
class PostChange:
    """What one save asks for, decided on `expected_version`: a new text (and image prompt),
    a move, a note. `new_file` is where a slot that has no post yet gets its first one."""

    text: str | None = None
    move: SlotMove | None = None
    note: str | None = None
    expected_version: str | None = None
    image_prompt: str | None = None
    new_file: Path | None = None
    model: str = ""


def post_problems(text: str, rules: PostRules, post: PostView) -> list[str]:
    """The generator's checks of one post: length, language, hashtags, emoji, and near
    duplicates of the persona's other posts (the text it replaces does not count)."""
    problems = rule_problems(text, rules)
    if not problems and post.duplicates is not None:
        earlier = post.duplicates.duplicate_of(text, replacing=post.text)
        if earlier is not None:
            problems.append(f"too similar to an earlier post: {earlier[:80]!r}")
    return problems


def rules_for(reader: OutputReader, key: str) -> PostRules:
    """The persona's post rules, as `tweets` applies them."""
    profile = reader.profile(key)
    return PostRules(reader.persona(key).language, profile.strategy.max_hashtags_per_tweet,
                     profile.strategy.emoji_use)


def _current_version(slot: Slot, tweet_path: Path | None) -> str:
    """The slot's post as it is now on disk (read under the calendar's lock)."""
    record = None
    if tweet_path is not None and tweet_path.is_file() and tweet_path.stat().st_size:
        try:
            record = read_tweet_file(tweet_path).record(slot.id)
        except KeyError:
            record = None
    return slot_version(slot, record)


def change_post(reader: OutputReader, post: PostView, change: PostChange) -> PostView:
    """Apply a text edit and/or a move to one post; return it as it is now.

    Raises PostRejectedError (checks failed; nothing written), StaleVersionError (the post changed
    since the tab read it; nothing written) or SlotMoveError (the move is not allowed).
    """
    # 1. Check the text as the generator would, before taking any lock.
    old_text = post.record.text if post.record else None
    text = change.text if change.text is not None and change.text != old_text else None
    if text is not None:
        problems = post_problems(text, rules_for(reader, post.calendar.persona_key), post)
        if problems:
            raise PostRejectedError(problems)
    if text is not None and post.record is None and change.new_file is None:
        raise MoveRefusedError(f"{post.slot.id} has no post yet: regenerate one first")

    # 2. Under the calendar's lock: the version check, then the slot's moves.
    def edit(calendar: Calendar) -> None:
        slot = calendar.slot(post.slot.id)
        current = _current_version(slot, post.tweet_path)
        if change.expected_version is not None and current != change.expected_version:
            raise StaleVersionError(post.calendar_path, change.expected_version, current)
        if text is not None:
            if slot.status != "drafted":  # an approved post needs approving again
                slot.apply("edit" if can_move(slot.status, "edit") else "draft")
            if post.record is None:
                slot.tweet_file, slot.failure = str(change.new_file), None
            slot.text = text
        if change.move is not None:
            slot.apply(change.move)
        if change.note is not None:
            slot.note = change.note[:MAX_NOTE_CHARS] or None

    update_calendar(post.calendar_path, edit)
    # 3. The text into the post's record (or a new tweet file for a slot's first post).
    if text is not None:
        _write_text(post, text, change)
    return reader.post(post.calendar.persona_key, post.calendar.month, post.slot.id)


def _write_text(post: PostView, text: str, change: PostChange) -> None:
    slot_id = post.slot.id
    if post.tweet_path is not None and post.record is not None:
        update_tweet_file(post.tweet_path,
                          lambda tweets: _set_text(tweets, slot_id, text, change.image_prompt))
        return
    if change.new_file is None:
        return
    record = TweetRecord(
        id=slot_id, slot_id=slot_id, scheduled_at=post.slot.scheduled_at,
        pillar=post.slot.pillar, theme=post.slot.theme, format=post.slot.format, text=text,
        image_prompt=(change.image_prompt or "") if post.slot.format == "image" else "",
        weighted_length=weighted_length(text),
        generation={"model": change.model, "attempt": 1, "made_in": "studio"},
    )
    initial = TweetFile(persona=post.calendar.persona, persona_key=post.calendar.persona_key,
                        handle=str(post.persona.core.get("handle", "")),
                        month=post.calendar.month, timezone=post.calendar.timezone)
    save_tweet_file(change.new_file, lambda tweets: tweets.tweets.append(record),
                    initial=initial)


def _set_text(tweet_file: TweetFile, slot_id: str, text: str,
              image_prompt: str | None = None) -> None:
    record = tweet_file.record(slot_id)
    record.text = text
    record.weighted_length = weighted_length(text)
    if image_prompt is not None and record.format == "image":
        record.image_prompt = image_prompt
    record.generation = {**record.generation, "edited_in": "studio"}


def move_slots(path: Path, slot_ids: list[str], move: SlotMove,
               note: str | None = None) -> list[str]:
    """A bulk approve/skip: each slot moved where the state machine allows; the refusals."""

    def apply(calendar: Calendar) -> list[str]:
        problems = calendar.move_slots(slot_ids, move)
        if note:
            for slot in calendar.slots:
                if slot.id in slot_ids and slot.status == "skipped":
                    slot.note = note[:MAX_NOTE_CHARS]
        return problems

    return update_calendar(path, apply)


def reschedule(path: Path, slot_id: str, day: str, hhmm: str | None, zone: ZoneInfo,
               tweet_path: Path | None) -> str:
    """Move a slot to another day (and time) of its month, in the persona's zone.

    Refused (MoveRefusedError) for a day outside the month, a slot already publishing or posted, or
    a minute another slot of the persona already has. Returns the new `scheduled_at`.
    """

    def move(calendar: Calendar) -> str:
        slot = calendar.slot(slot_id)
        if slot.status in UNMOVABLE_STATUSES:
            raise MoveRefusedError(f"{slot_id} is {slot.status}: it can no longer move")
        old = datetime.fromisoformat(slot.scheduled_at)
        moment = _moment(day, hhmm or old.strftime("%H:%M"), zone)
        if moment.strftime("%Y-%m") != calendar.month:
            raise MoveRefusedError(f"{day} is not in {calendar.month}")
        clash = next((other.id for other in calendar.slots if other.id != slot_id
                      and datetime.fromisoformat(other.scheduled_at) == moment), None)
        if clash is not None:
            raise MoveRefusedError(f"{clash} is already at {moment:%Y-%m-%d %H:%M}: "
                              "not two slots in one minute")
        slot.scheduled_at = moment.isoformat()
        return slot.scheduled_at

    scheduled_at = update_calendar(path, move)
    if tweet_path is not None:
        update_tweet_file(tweet_path, lambda tweets: _set_time(tweets, slot_id, scheduled_at))
    return scheduled_at


def _set_time(tweet_file: TweetFile, slot_id: str, scheduled_at: str) -> None:
    try:
        tweet_file.record(slot_id).scheduled_at = scheduled_at
    except KeyError:
        return  # the slot's post lives in another file now


def _moment(day: str, hhmm: str, zone: ZoneInfo) -> datetime:
    try:
        naive = datetime.fromisoformat(f"{day}T{hhmm}")
    except ValueError as exc:
        raise MoveRefusedError(f"not a day and time: {day!r} {hhmm!r}") from exc
    return naive.replace(second=0, microsecond=0, tzinfo=zone)
