"""The tweet file, `tweets/{persona}_{stamp}.json`: the posts one `tweets` run wrote.

One reader and one writer for every command (tweets, images, export-posts, card exports, the
studio, the publisher). A file that is empty (claimed by a run that has not saved yet) reads as
no posts; a file that is not a tweet file is an InputError naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError, PersonaFoundryError
from ..files import pretty_json
from .locking import locked_update, version_of

T = TypeVar("T")
MAX_TWEET_FILE_NAMES = 10_000


class ImageFacts(BaseModel):
    """How a post's image was rendered (or why it was not)."""

    model_config = ConfigDict(extra="allow")

    seed: int | None = None
    nsfw_score: float | None = None
    renders: int | None = None
    error: str | None = None


class TweetRecord(BaseModel):
    """One post as written for one calendar slot."""

    model_config = ConfigDict(extra="allow")

    id: str
    slot_id: str
    scheduled_at: str
    pillar: str = ""
    theme: str = ""
    format: Literal["text", "image"] = "text"
    text: str
    image_prompt: str = ""
    weighted_length: int | None = None
    generation: dict[str, Any] = Field(default_factory=dict)
    image_path: str | None = None
    image_status: str | None = None
    image: ImageFacts | None = None
    # Set by the publisher once the platform took the post (the calendar slot says the same).
    posted_id: str | None = None
    posted_url: str | None = None
    posted_at: str | None = None


class TweetFile(BaseModel):
    """A run's posts for one persona and month."""

    model_config = ConfigDict(extra="allow")

    persona: str
    persona_key: str
    handle: str = ""
    month: str = ""
    timezone: str = "UTC"
    run_id: str | None = None
    tweets: list[TweetRecord] = Field(default_factory=list)

    def record(self, record_id: str) -> TweetRecord:
        """The post with this id (KeyError when there is none)."""
        for record in self.tweets:
            if record.id == record_id:
                return record
        raise KeyError(record_id)


def _parse(path: Path, raw: bytes) -> TweetFile:
    if not raw.strip():
        raise InputError(path, "not a tweet file (empty: its run has not saved yet)")
    try:
        return TweetFile.model_validate_json(raw)
    except ValueError as exc:
        raise InputError(path, f"not a tweet file ({exc})") from exc


def _dump(tweet_file: TweetFile) -> bytes:
    return pretty_json(tweet_file.model_dump(mode="json", exclude_none=True))


def read_tweet_file_versioned(path: Path) -> tuple[TweetFile, str]:
    """A tweet file and its version, or an InputError naming the file and why."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(path, "file not found") from exc
    except OSError as exc:
        raise InputError(path, f"unreadable tweet file: {exc.strerror or exc}") from exc
    return _parse(path, raw), version_of(raw)


def read_tweet_file(path: Path) -> TweetFile:
    """A tweet file, or an InputError naming the file and why."""
    return read_tweet_file_versioned(path)[0]


def read_tweet_files(paths: list[Path]) -> tuple[list[tuple[Path, TweetFile]], list[str]]:
    """Every readable tweet file of `paths`, and why each other one was left out (empty files
    of runs that have not saved yet are left out silently)."""
    found, problems = [], []
    for path in paths:
        try:
            found.append((path, read_tweet_file(path)))
        except InputError as exc:
            if "empty" not in exc.reason:
                problems.append(str(exc))
    return found, problems


def save_tweet_file(path: Path, change: Callable[[TweetFile], T], *, initial: TweetFile,
                    expected_version: str | None = None) -> T:
    """Locked read-modify-write of a tweet file; `initial` stands in while the file is empty
    (just claimed by `claim_tweet_file`)."""

    def parse(file_path: Path, raw: bytes) -> TweetFile:
        return initial.model_copy(deep=True) if not raw.strip() else _parse(file_path, raw)

    return locked_update(path, parse, _dump, change, expected_version=expected_version)[0]


def update_tweet_file(path: Path, change: Callable[[TweetFile], T], *,
                      expected_version: str | None = None) -> T:
    """Locked read-modify-write of an existing tweet file (InputError when it is gone)."""
    if not path.exists():
        raise InputError(path, "file not found")
    return locked_update(path, _parse, _dump, change, expected_version=expected_version)[0]


def claim_tweet_file(folder: Path, persona: str) -> Path:
    """A new, never-before-used file name, claimed atomically (O_EXCL) even across processes."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S_%f")
    for number in range(1, MAX_TWEET_FILE_NAMES):
        suffix = "" if number == 1 else f"-{number}"
        candidate = folder / f"{persona}_{stamp}{suffix}.json"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        return candidate
    raise PersonaFoundryError(f"cannot find a free tweet file name in {folder}")
