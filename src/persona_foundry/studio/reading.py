"""What the studio's pages show, read through the store: personas, months, posts.

Every file is parsed at most once per change: `FileCache` keeps the parsed value under the
file's (mtime, size), so a page of 50 personas × 60 slots re-reads only what the CLI, the
publisher or another tab wrote since. A file's version (the store's hash of its bytes) comes
with it, for the edit forms.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson

from ..cards.portrait import STORED_IMAGE_SUFFIXES
from ..errors import InputError
from ..files import persona_key
from ..nsfw import NSFW_LEVELS, NsfwLevel
from ..profile import PersonaProfile, load_profile
from ..store import (
    Calendar,
    OutputLayout,
    PersonaExtension,
    Slot,
    TweetFile,
    TweetRecord,
    extension_of,
    read_calendar_versioned,
    read_card_json_versioned,
    read_tweet_file_versioned,
    version_of,
)
from ..textchecks import DuplicateIndex

T = TypeVar("T")
MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
KEY_PATTERN = re.compile(r"^[\w\-]{1,120}$", re.UNICODE)
SLOT_ID_PATTERN = re.compile(r"^[\w\-]{1,40}$")
MAX_CACHED_FILES = 4096


class NotFoundError(LookupError):
    """A persona, month, slot or file the request names does not exist (HTTP 404)."""


class FileCache(Generic[T]):
    """Parsed files by path, valid while the file's mtime and size are unchanged."""

    def __init__(self, parse: Callable[[Path], tuple[T, str]]) -> None:
        self._parse = parse
        self._entries: dict[Path, tuple[tuple[int, int], T, str]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[T, str]:
        """The parsed file and its version (InputError when it cannot be read)."""
        try:
            stat = path.stat()
        except OSError as exc:
            raise InputError(path, f"unreadable: {exc.strerror or exc}") from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        entry = self._entries.get(path)
        if entry is not None and entry[0] == stamp:
            return entry[1], entry[2]
        value, version = self._parse(path)
        with self._lock:
            if len(self._entries) >= MAX_CACHED_FILES:
                self._entries.clear()
            self._entries[path] = (stamp, value, version)
        return value, version


@dataclass(frozen=True)
class PersonaView:
    """One card as the gallery and persona page show it."""

    key: str
    path: Path
    version: str
    data: dict[str, Any]
    ours: PersonaExtension | None
    portrait: str | None  # a path relative to the output folder, for /files/

    @property
    def name(self) -> str:
        """The card's name."""
        return str(self.data.get("name", self.key))

    def stage(self, name: str) -> dict[str, Any] | None:
        """A stage's stored output."""
        return self.ours.stage_output(name) if self.ours else None

    @property
    def core(self) -> dict[str, Any]:
        """Stage 1's output (empty for a foreign card)."""
        return self.stage("core") or {}

    @property
    def language(self) -> str:
        """The language the persona writes in."""
        return self.ours.language if self.ours else "English"

    @property
    def nsfw_level(self) -> NsfwLevel:
        """The content level the persona was made with ("off" when unknown)."""
        return NSFW_LEVELS.get(self.ours.nsfw_level if self.ours else "off", "off")

    @property
    def draw(self) -> dict[str, Any]:
        """The population draw the persona was made from."""
        return (self.ours.draw if self.ours else None) or {}

    @property
    def failed_stages(self) -> dict[str, str]:
        """Stages that did not finish, with their reason."""
        if self.ours is None:
            return {}
        return {name: summary.error or summary.status
                for name, summary in self.ours.stages.items() if summary.status != "ok"}


@dataclass(frozen=True)
class SlotView:
    """One slot of a month, with what the calendar shows of it."""

    slot: Slot
    persona: str
    persona_name: str
    month: str
    when: datetime

    @property
    def local_time(self) -> str:
        """HH:MM in the persona's zone (slots are stored at the persona's local offset)."""
        return self.slot.scheduled_at[11:16]

    @property
    def ref(self) -> str:
        """`persona|month|slot`: how forms and scripts name the slot across calendars."""
        return f"{self.persona}|{self.month}|{self.slot.id}"

    @property
    def href(self) -> str:
        """The post editor's address (keys, months and slot ids are URL-safe by pattern)."""
        return f"/post/{self.persona}/{self.month}/{self.slot.id}"


@dataclass
class PostView:
    """One post for the editor: its slot, its record (when drafted) and where both live."""

    calendar: Calendar
    calendar_path: Path
    slot: Slot
    record: TweetRecord | None
    tweet_path: Path | None
    version: str
    persona: PersonaView
    duplicates: PostsIndex | None = None

    @property
    def text(self) -> str | None:
        """The post's stored text (None while the slot has no post)."""
        return self.record.text if self.record else None


def _parse_card(path: Path) -> tuple[dict[str, Any], str]:
    return read_card_json_versioned(path)


def _parse_profile(path: Path) -> tuple[PersonaProfile, str]:
    return load_profile(path), ""


class OutputReader:
    """Reads one output folder for the studio, with every file cached by mtime."""

    def __init__(self, layout: OutputLayout) -> None:
        self.layout = layout
        self.cards: FileCache[dict[str, Any]] = FileCache(_parse_card)
        self.calendars: FileCache[Calendar] = FileCache(read_calendar_versioned)
        self.tweets: FileCache[TweetFile] = FileCache(read_tweet_file_versioned)
        self.profiles: FileCache[PersonaProfile] = FileCache(_parse_profile)
        self._indexes: dict[str, PostsIndex] = {}

    def relative(self, path: str | Path | None) -> str | None:
        """`path` relative to the output folder when it lies inside it, else None."""
        if not path:
            return None
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.layout.root / candidate
        if not self.layout.contains(candidate):
            return None
        return candidate.resolve().relative_to(self.layout.root.resolve()).as_posix()

    def personas(self) -> tuple[list[PersonaView], list[str]]:
        """Every card in the folder, and why any other one could not be read."""
        found, problems = [], []
        for path in self.layout.card_paths():
            try:
                found.append(self._persona_at(path))
            except InputError as exc:
                problems.append(str(exc))
        return found, problems

    def persona(self, key: str) -> PersonaView:
        """The card of `key` (NotFoundError when there is none)."""
        if not KEY_PATTERN.match(key):
            raise NotFoundError(f"no persona {key!r}")
        path = self.layout.card_path(key)
        if not path.is_file() or not self.layout.contains(path):
            raise NotFoundError(f"no persona {key!r}")
        return self._persona_at(path)

    def profile(self, key: str) -> PersonaProfile:
        """The content commands' view of a persona (strategy, voice, zone)."""
        return self.profiles.get(self.persona(key).path)[0]

    def _persona_at(self, path: Path) -> PersonaView:
        card, version = self.cards.get(path)
        data = card["data"]
        extensions = data.get("extensions")
        ours = extension_of(extensions) if isinstance(extensions, dict) else None
        portrait = next((self.relative(candidate) for candidate in
                         (path.with_suffix(suffix) for suffix in STORED_IMAGE_SUFFIXES)
                         if candidate.is_file()), None)
        return PersonaView(persona_key(path), path, version, data, ours, portrait)

    def months(self, key: str | None = None) -> list[str]:
        """Months that have a calendar (of one persona when given), sorted."""
        months = {path.stem.rsplit("_", 1)[-1] for path in self.layout.calendar_paths(key)}
        return sorted(month for month in months if MONTH_PATTERN.match(month))

    def calendar(self, key: str, month: str) -> tuple[Calendar, Path, str]:
        """A persona's month, its path and version (NotFoundError when it has none)."""
        if not MONTH_PATTERN.match(month) or not KEY_PATTERN.match(key):
            raise NotFoundError(f"no calendar {key!r} {month!r}")
        path = self.layout.calendar_path(key, month)
        if not path.is_file() or not self.layout.contains(path):
            raise NotFoundError(f"no calendar for {key} in {month}")
        calendar, version = self.calendars.get(path)
        return calendar, path, version

    def slots(self, month: str, keys: list[str]) -> tuple[list[SlotView], list[str]]:
        """The month's slots of these personas, in time order, and unreadable calendars."""
        views, problems = [], []
        for key in keys:
            try:
                calendar = self.calendar(key, month)[0]
            except NotFoundError:
                continue
            except InputError as exc:
                problems.append(str(exc))
                continue
            views += [SlotView(slot, key, calendar.persona, month,
                               datetime.fromisoformat(slot.scheduled_at))
                      for slot in calendar.slots]
        views.sort(key=lambda view: (view.slot.scheduled_at, view.persona))
        return views, problems

    def tweet_file(self, slot: Slot) -> tuple[Path, TweetFile] | None:
        """The tweet file holding the slot's post, when it names one inside the folder."""
        if not slot.tweet_file:
            return None
        path = Path(slot.tweet_file)
        path = path if path.is_absolute() else self.layout.root / path
        if not self.layout.contains(path) or not path.is_file():
            return None
        return path, self.tweets.get(path)[0]

    def post(self, key: str, month: str, slot_id: str) -> PostView:
        """Everything the post editor shows of one slot."""
        if not SLOT_ID_PATTERN.match(slot_id):
            raise NotFoundError(f"no slot {slot_id!r}")
        calendar, path, _ = self.calendar(key, month)
        try:
            slot = calendar.slot(slot_id)
        except KeyError as exc:
            raise NotFoundError(f"no slot {slot_id} in {key} {month}") from exc
        found = self.tweet_file(slot)
        record = None
        if found is not None:
            try:
                record = found[1].record(slot_id)
            except KeyError:
                record = None
        view = PostView(calendar, path, slot, record, found[0] if found else None,
                        slot_version(slot, record), self.persona(key))
        view.duplicates = self.posts_index(key)
        return view

    def posts_index(self, key: str) -> PostsIndex:
        """Every post of this persona (its tweet files and example posts) in one near-duplicate
        index, built again only when one of its files changed."""
        paths = self.layout.tweet_paths(key)
        stamp = tuple((path.name, *_stamp(path)) for path in [self.persona(key).path, *paths])
        cached = self._indexes.get(key)
        if cached is not None and cached.stamp == stamp:
            return cached
        index = PostsIndex(stamp)
        for text in self.profile(key).example_posts:
            index.add(text)
        for path in paths:
            try:
                tweet_file = self.tweets.get(path)[0]
            except InputError:
                continue  # an empty file of a run still going, or a foreign one
            for record in tweet_file.tweets:
                index.add(record.text)
        self._indexes[key] = index
        return index


class PostsIndex:
    """A persona's posts as a DuplicateIndex (textchecks), safe to share between requests."""

    def __init__(self, stamp: tuple[tuple[object, ...], ...]) -> None:
        self.stamp = stamp
        self._index = DuplicateIndex()
        self._lock = threading.Lock()

    def add(self, text: str) -> None:
        """Remember one post."""
        with self._lock:
            self._index.add(text)

    def duplicate_of(self, text: str, replacing: str | None) -> str | None:
        """The other post `text` (near-)duplicates; the post it replaces does not count."""
        with self._lock:
            return self._index.find(text, ignore=replacing)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def slot_version(slot: Slot, record: TweetRecord | None) -> str:
    """The version an editor tab holds of one post: a hash of its slot and its text.

    Per post, not per file: the calendar file also changes when another slot is approved or a
    `tweets` run saves, and that must not turn every open editor's next save into a conflict.
    """
    payload = {"slot": slot.model_dump(mode="json"), "text": record.text if record else None}
    return version_of(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
