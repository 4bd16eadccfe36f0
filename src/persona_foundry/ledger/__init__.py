"""The SQLite ledger: every LLM call of every run, and the cache of validated replies."""

from .calls import CallRecord, Ledger
from .db import open_ledger

__all__ = ["CallRecord", "Ledger", "open_ledger"]
