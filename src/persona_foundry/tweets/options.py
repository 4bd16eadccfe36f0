"""What a `tweets` run asks for, what it reports, and what a progress display hears."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..nsfw import NsfwLevel

DEFAULT_SLOTS_PER_CALL = 8


@dataclass(frozen=True)
class TweetOptions:
    """What one `tweets` command asks for."""

    cards: list[Path]
    out_dir: Path
    month: str
    count: int = 30
    slots_per_call: int = DEFAULT_SLOTS_PER_CALL
    language: str = "English"
    nsfw_level: NsfwLevel = "off"
    judge: bool = False  # the consistency judge gates every post (quality/judge.py)


@dataclass
class PersonaTweets:
    """One persona's result."""

    card: Path
    persona: str = ""
    tweet_file: Path | None = None
    made: int = 0
    regenerated: int = 0
    failed: int = 0
    duplicates: int = 0
    recovered: int = 0  # accepted by an earlier run that died before saving them
    judge_rejected: int = 0  # drafts the consistency judge failed (with --judge)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class TweetRunSummary:
    """The whole command's result."""

    personas: list[PersonaTweets]
    wall_s: float
    fatal_error: str | None = None
    cost_usd: float = 0.0

    @property
    def made(self) -> int:
        """Posts written."""
        return sum(p.made for p in self.personas)

    @property
    def exit_code(self) -> int:
        """0 all done; 1 some post or persona failed; 2 nothing could run."""
        if self.fatal_error or (not self.made and any(p.error for p in self.personas)):
            return 2
        return 1 if any(p.failed or p.error for p in self.personas) else 0


class TweetProgress(Protocol):
    """What a progress display hears."""

    def add_total(self, slots: int) -> None:
        """More slots to fill."""

    def advance(self, slots: int) -> None:
        """Slots finished (drafted or failed)."""

    def watch(self, window: Callable[[], int | None]) -> None:
        """Where to read the current concurrency window."""
