"""The output folder's layout: every file the product writes has its place named here, once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..files import CARD_FILE_SUFFIX

PERSONAS_DIR = "personas"
CALENDARS_DIR = "calendars"
TWEETS_DIR = "tweets"
IMAGES_DIR = "images"
LOGS_DIR = "logs"
GRAPH_JSON = "social_graph.json"
# The names and handles the folder's cards had when last read (identity_index.py).
IDENTITY_INDEX = ".identities.json"
ACCOUNTS_FILE = "accounts.yaml"
LEDGER_FILENAME = "ledger.db"
# Private state of long-running commands (platform sessions): mode 0700, never shared.
PRIVATE_DIR = ".private"
# The folders whose parent is the output folder: a file found inside one of them tells where
# its output folder is without guessing `parent.parent`.
CONTENT_DIRS = (PERSONAS_DIR, CALENDARS_DIR, TWEETS_DIR, IMAGES_DIR)


@dataclass(frozen=True)
class OutputLayout:
    """Where each kind of file lives inside one output folder."""

    root: Path

    @classmethod
    def of_file(cls, path: Path, *, default: Path | None = None) -> OutputLayout:
        """The layout a file belongs to: the folder above the nearest content folder holding it,
        else `default` (or the file's own folder)."""
        resolved = path.resolve()
        for parent in resolved.parents:
            if parent.name in CONTENT_DIRS:
                return cls(parent.parent)
        return cls(default if default is not None else resolved.parent)

    @property
    def personas_dir(self) -> Path:
        """Cards and the source images kept beside them."""
        return self.root / PERSONAS_DIR

    @property
    def calendars_dir(self) -> Path:
        """One calendar per persona and month."""
        return self.root / CALENDARS_DIR

    @property
    def tweets_dir(self) -> Path:
        """One tweet file per `tweets` run and persona."""
        return self.root / TWEETS_DIR

    @property
    def images_dir(self) -> Path:
        """Rendered post images, one folder per persona."""
        return self.root / IMAGES_DIR

    @property
    def graph_path(self) -> Path:
        """The batch's social graph."""
        return self.root / GRAPH_JSON

    @property
    def identity_index_path(self) -> Path:
        """Each card's name and handle as last read, with the file's size and mtime then."""
        return self.root / IDENTITY_INDEX

    @property
    def ledger_path(self) -> Path:
        """The run ledger (SQLite)."""
        return self.root / LEDGER_FILENAME

    @property
    def accounts_path(self) -> Path:
        """Which platform account each persona publishes to."""
        return self.root / ACCOUNTS_FILE

    @property
    def private_dir(self) -> Path:
        """Private state (platform login sessions): created 0700, files in it 0600."""
        return self.root / PRIVATE_DIR

    def card_path(self, persona_key: str) -> Path:
        """Where the persona command writes this persona's card."""
        return self.personas_dir / f"{persona_key}{CARD_FILE_SUFFIX}"

    def card_paths(self) -> list[Path]:
        """Every card of ours in the folder, sorted."""
        return sorted(self.personas_dir.glob(f"*{CARD_FILE_SUFFIX}"))

    def calendar_path(self, persona_key: str, month: str) -> Path:
        """Where a persona's month lives."""
        return self.calendars_dir / f"{persona_key}_{month}.json"

    def calendar_paths(self, persona_key: str | None = None) -> list[Path]:
        """Every calendar in the folder (of one persona when given), sorted."""
        pattern = f"{persona_key}_*.json" if persona_key else "*.json"
        return sorted(self.calendars_dir.glob(pattern))

    def tweet_paths(self, persona_key: str | None = None) -> list[Path]:
        """Every tweet file in the folder (of one persona when given), sorted."""
        pattern = f"{persona_key}_*.json" if persona_key else "*.json"
        return sorted(self.tweets_dir.glob(pattern))

    def images_for(self, persona_key: str) -> Path:
        """The folder a persona's rendered images go to."""
        return self.images_dir / persona_key

    def contains(self, path: Path) -> bool:
        """Whether `path` (after resolving links and `..`) lies inside this output folder."""
        return path.resolve().is_relative_to(self.root.resolve())
