"""The SQLite ledger: every LLM call of every run, the cache of validated replies, and every
publish attempt."""

from .calls import CallRecord, Ledger, PublishAttemptRow
from .db import open_ledger

__all__ = ["CallRecord", "Ledger", "PublishAttemptRow", "open_ledger"]
