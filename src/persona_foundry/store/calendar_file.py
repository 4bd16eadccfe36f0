"""The calendar file, `calendars/{persona}_{YYYY-MM}.json`: a persona's month and its slots."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict

from ..errors import InputError
from ..files import pretty_json
from .locking import locked_create, locked_update, version_of
from .slots import SlotMove, SlotMoveError, SlotStatus, next_status

T = TypeVar("T")


class CalendarEvent(BaseModel):
    """Something that happens in the persona's month, as stored (with an id and a date)."""

    model_config = ConfigDict(extra="allow")

    id: str
    date: str
    day: int
    title: str
    description: str = ""
    kind: str = "other"
    with_handles: list[str] = []


class PublishRecord(BaseModel):
    """Where a slot's post went out (or is going out)."""

    model_config = ConfigDict(extra="allow")

    platform: str
    account: str = ""
    idempotency_key: str = ""
    post_id: str | None = None
    url: str | None = None
    at: str | None = None
    # True when the post was handed to the platform's own scheduler (it goes live at the slot's
    # time, not at `at`).
    scheduled: bool = False


class Slot(BaseModel):
    """One planned post and where it stands in its lifecycle (store/slots.py)."""

    model_config = ConfigDict(extra="allow")

    id: str
    scheduled_at: str
    pillar: str
    theme: str
    event_id: str | None = None
    format: Literal["text", "image"] = "text"
    status: SlotStatus = "planned"
    tweet_file: str | None = None
    text: str | None = None
    image_path: str | None = None
    failure: str | None = None
    note: str | None = None
    publish: PublishRecord | None = None

    def apply(self, move: SlotMove) -> None:
        """Make a lifecycle move, or raise SlotMoveError (the slot is left as it was)."""
        self.status = next_status(self.status, move)


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or UTC when it names none this machine knows: the one rule
    a persona's slot times are made by and later read (and published) by."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


class Calendar(BaseModel):
    """A persona's month."""

    model_config = ConfigDict(extra="allow")

    persona: str
    persona_key: str
    month: str
    timezone: str
    themes: list[str]
    events: list[CalendarEvent]
    slots: list[Slot]
    created_at: str
    updated_at: str

    @property
    def zone(self) -> ZoneInfo:
        """The time zone its slots' times are in (see zone_named)."""
        return zone_named(self.timezone)

    def slot(self, slot_id: str) -> Slot:
        """The slot with this id (KeyError when there is none)."""
        for slot in self.slots:
            if slot.id == slot_id:
                return slot
        raise KeyError(slot_id)

    def move_slots(self, slot_ids: list[str], move: SlotMove) -> list[str]:
        """Apply `move` to each slot where allowed; return why the others were not moved."""
        by_id = {slot.id: slot for slot in self.slots}
        problems = []
        for slot_id in slot_ids:
            slot = by_id.get(slot_id)
            if slot is None:
                problems.append(f"{slot_id}: no such slot in {self.month}")
                continue
            try:
                slot.apply(move)
            except SlotMoveError as exc:
                problems.append(f"{slot_id}: {exc}")
        return problems


def _parse(path: Path, raw: bytes) -> Calendar:
    try:
        return Calendar.model_validate_json(raw)
    except ValueError as exc:
        raise InputError(path, f"unreadable calendar: {exc}") from exc


def _dump(calendar: Calendar) -> bytes:
    calendar.updated_at = datetime.now(UTC).isoformat()
    return pretty_json(calendar.model_dump(mode="json"))


def read_calendar_versioned(path: Path) -> tuple[Calendar, str]:
    """A calendar file and its version, or an InputError saying why it cannot be used."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"unreadable calendar: {exc.strerror or exc}") from exc
    return _parse(path, raw), version_of(raw)


def read_calendar(path: Path) -> Calendar:
    """A calendar file, or an InputError saying why it cannot be used."""
    return read_calendar_versioned(path)[0]


def update_calendar(path: Path, change: Callable[[Calendar], T], *,
                    expected_version: str | None = None) -> T:
    """Locked read-modify-write with an atomic replace: concurrent writers lose no update."""
    if not path.exists():
        raise InputError(path, "unreadable calendar: file not found")
    return locked_update(path, _parse, _dump, change, expected_version=expected_version)[0]


def create_calendar(path: Path, calendar: Calendar) -> Calendar:
    """Write a new calendar unless another process wrote one meanwhile (theirs wins)."""
    if locked_create(path, pretty_json(calendar.model_dump(mode="json"))):
        return calendar
    return read_calendar(path)
