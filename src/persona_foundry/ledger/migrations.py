"""Append-only, named schema migrations; `migrate()` applies the ones a database lacks."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(function: Migration) -> Migration:
    """Register a migration under its function name; order of definition is order of applying."""
    MIGRATIONS.append((function.__name__, function))
    return function


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded in `_migrations`; return the names applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations "
        "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    applied = []
    for name, function in MIGRATIONS:
        if name in done:
            continue
        with db:
            function(db)
            db.execute("INSERT INTO _migrations (name) VALUES (?)", (name,))
        applied.append(name)
    return applied


@migration
def m001_calls(db: sqlite3.Connection) -> None:
    """One row per HTTP/local call attempt sequence (a transport-retried call is one row)."""
    db.execute(
        """
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            persona TEXT NOT NULL,
            stage TEXT NOT NULL,
            model TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            request_json TEXT NOT NULL,
            response_text TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            latency_ms INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL,
            error TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )
        """
    )
    db.execute("CREATE INDEX calls_fingerprint ON calls (fingerprint)")
    db.execute("CREATE INDEX calls_persona_stage ON calls (persona, stage)")


@migration
def m002_cache(db: sqlite3.Connection) -> None:
    """Validated replies by the fingerprint of the request that first asked for them."""
    db.execute(
        """
        CREATE TABLE cache (
            fingerprint TEXT PRIMARY KEY,
            stage TEXT NOT NULL,
            output_json TEXT NOT NULL,
            call_id INTEGER REFERENCES calls (id),
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )
        """
    )


@migration
def m003_cached_tokens(db: sqlite3.Connection) -> None:
    """Prompt tokens the provider served from its prompt cache (cheaper input)."""
    db.execute("ALTER TABLE calls ADD COLUMN cached_tokens INTEGER NOT NULL DEFAULT 0")


@migration
def m004_tweets(db: sqlite3.Connection) -> None:
    """One row per generated post: its slot, file, verdict and its share of the call's tokens."""
    db.execute(
        """
        CREATE TABLE tweets (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            persona TEXT NOT NULL,
            slot_id TEXT NOT NULL,
            tweet_file TEXT,
            status TEXT NOT NULL,
            reason TEXT,
            prompt_tokens REAL NOT NULL DEFAULT 0,
            completion_tokens REAL NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )
        """
    )
    db.execute("CREATE INDEX tweets_persona_slot ON tweets (persona, slot_id)")


@migration
def m005_tweet_records(db: sqlite3.Connection) -> None:
    """The accepted post itself, so a run that dies before saving its file loses no paid post."""
    db.execute("ALTER TABLE tweets ADD COLUMN record_json TEXT")


@migration
def m006_publish_attempts(db: sqlite3.Connection) -> None:
    """One row per publish event of a slot: `sending` is written before the post leaves, then
    `posted`, `scheduled`, `found` (an uncertain attempt that the platform had), `rejected`,
    `deferred`, `error`, or `live` (a scheduled post went out: its live URL)."""
    db.execute(
        """
        CREATE TABLE publish_attempts (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            persona TEXT NOT NULL,
            slot_id TEXT NOT NULL,
            platform TEXT NOT NULL,
            account TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            status TEXT NOT NULL,
            post_id TEXT,
            url TEXT,
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        )
        """
    )
    db.execute("CREATE INDEX publish_attempts_key ON publish_attempts (idempotency_key)")
