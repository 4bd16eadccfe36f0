"""Where a persona's posts are kept: this run's tweet file, the calendar's slots, and the posts
an earlier run paid for but never saved (taken back from the ledger).

Both files are written through the store's locked update, so an `images` run attaching pictures
or a user approving slots at the same time loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from ..profile import PersonaProfile
from ..store import (
    Calendar,
    OutputLayout,
    Slot,
    TweetFile,
    TweetRecord,
    claim_tweet_file,
    read_tweet_files,
    save_tweet_file,
    update_calendar,
)
from ..store.slots import can_move
from ..textchecks import weighted_length
from .prompting import TweetDraft

# What identifies the slot a post was written for: a re-planned month may reuse an id.
SLOT_IDENTITY = ("slot_id", "scheduled_at", "pillar", "theme", "format")


def tweet_record(slot: Slot, draft: TweetDraft, model: str, attempt: int) -> TweetRecord:
    """The stored post for a slot's accepted draft."""
    return TweetRecord(
        id=slot.id, slot_id=slot.id, scheduled_at=slot.scheduled_at, pillar=slot.pillar,
        theme=slot.theme, format=slot.format, text=draft.text,
        image_prompt=draft.image_prompt if slot.format == "image" else "",
        weighted_length=weighted_length(draft.text),
        generation={"model": model, "attempt": attempt},
    )


def record_json(record: TweetRecord) -> str:
    """A record as the ledger keeps it (to take it back after a crash)."""
    return json.dumps(record.model_dump(mode="json", exclude_none=True))


def recovered_record(stored: str | None, slot: Slot) -> TweetRecord | None:
    """A ledger's post record, if it was written for this very slot (same time, pillar, theme
    and format: a re-planned month may reuse an id for another slot)."""
    if stored is None:
        return None
    try:
        record = TweetRecord.model_validate_json(stored)
    except ValidationError:
        return None
    wanted = {key: getattr(slot, "id" if key == "slot_id" else key) for key in SLOT_IDENTITY}
    found = {key: getattr(record, key) for key in SLOT_IDENTITY}
    return record if found == wanted else None


class PostFiles:
    """One persona's files in one `tweets` run: a freshly claimed tweet file and its calendar."""

    def __init__(self, layout: OutputLayout, profile: PersonaProfile, month: str,
                 run_id: str) -> None:
        self.layout, self.persona_key = layout, profile.key
        self.tweet_file = claim_tweet_file(layout.tweets_dir, profile.key)
        self.calendar_file = layout.calendar_path(profile.key, month)
        self._header = TweetFile(persona=profile.name, persona_key=profile.key,
                                 handle=profile.handle, month=month, timezone=profile.timezone,
                                 run_id=run_id)

    def earlier_posts(self) -> Iterator[str]:
        """The texts of the persona's other tweet files (a foreign or broken file adds none)."""
        others = [path for path in self.layout.tweet_paths(self.persona_key)
                  if path != self.tweet_file]
        for _path, tweet_file in read_tweet_files(others)[0]:
            yield from (record.text for record in tweet_file.tweets)

    def save(self, records: list[TweetRecord], failures: dict[str, str]) -> None:
        """Add the new posts to this run's tweet file and move their slots (both locked)."""
        def add(tweet_file: TweetFile) -> None:
            # Only new records are added: what another command wrote into the file (an image
            # attached meanwhile) stays as it is.
            known = {record.id for record in tweet_file.tweets}
            tweet_file.tweets += [record.model_copy() for record in records
                                  if record.id not in known]

        save_tweet_file(self.tweet_file, add, initial=self._header)
        update_calendar(self.calendar_file, self._marker(records, failures))

    def _marker(self, records: list[TweetRecord], failures: dict[str, str]) -> _SlotMarker:
        return _SlotMarker({record.slot_id: record.text for record in records}, failures,
                           self.tweet_file)


class _SlotMarker:
    """The calendar change of a save: drafted slots get their post, failed ones their reason;
    a slot someone moved meanwhile (skipped, approved) keeps its state."""

    def __init__(self, drafted: dict[str, str], failures: dict[str, str],
                 tweet_file: Path) -> None:
        self.drafted, self.failures, self.tweet_file = drafted, failures, tweet_file

    def __call__(self, calendar: Calendar) -> None:
        for slot in calendar.slots:
            if slot.id in self.drafted and can_move(slot.status, "draft"):
                slot.apply("draft")
                slot.tweet_file, slot.text = str(self.tweet_file), self.drafted[slot.id]
                slot.failure = None
            elif slot.id in self.failures and can_move(slot.status, "fail"):
                slot.apply("fail")
                slot.failure = self.failures[slot.id]
