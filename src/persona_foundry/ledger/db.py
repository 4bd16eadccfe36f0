"""The only place that opens the SQLite ledger; opening always migrates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import OutputError
from ..store.layout import LEDGER_FILENAME
from .calls import Ledger
from .migrations import migrate

__all__ = ["BUSY_TIMEOUT_S", "LEDGER_FILENAME", "open_ledger"]
BUSY_TIMEOUT_S = 30.0


def open_ledger(path: Path) -> Ledger:
    """Open (creating and migrating) the ledger at path; WAL so readers never block the run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        migrate(db)
    except sqlite3.Error as exc:
        raise OutputError(f"cannot open the ledger {path}: {exc}") from exc
    return Ledger(db)
