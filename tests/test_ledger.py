"""The ledger: migrations on blank and old databases, call records, the reply cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from persona_foundry.ledger import CallRecord, open_ledger
from persona_foundry.ledger.migrations import MIGRATIONS, migrate

EXPECTED_CALL_COLUMNS = {
    "id", "run_id", "persona", "stage", "model", "fingerprint", "request_json", "response_text",
    "prompt_tokens", "completion_tokens", "cached_tokens", "latency_ms", "attempts", "status",
    "error", "created_at",
}

EXPECTED_PUBLISH_COLUMNS = {
    "id", "run_id", "persona", "slot_id", "platform", "account", "idempotency_key", "status",
    "post_id", "url", "reason", "attempts", "created_at",
}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def test_blank_database_gets_every_migration(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.db")
    assert _columns(ledger.db, "calls") == EXPECTED_CALL_COLUMNS
    assert "slot_id" in _columns(ledger.db, "tweets")
    assert _columns(ledger.db, "publish_attempts") == EXPECTED_PUBLISH_COLUMNS
    assert _columns(ledger.db, "cache") == {
        "fingerprint", "stage", "output_json", "call_id", "created_at"}
    applied = [row[0] for row in ledger.db.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert applied == [name for name, _ in MIGRATIONS]
    ledger.close()


def test_old_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    name, first = MIGRATIONS[0]
    first(db)
    db.execute("INSERT INTO _migrations (name) VALUES (?)", (name,))
    db.execute(
        "INSERT INTO calls (run_id, persona, stage, model, fingerprint, request_json, status) "
        "VALUES ('r', 'p', 'core', 'm', 'f', '[]', 'ok')"
    )
    db.close()

    ledger = open_ledger(path)
    assert _columns(ledger.db, "calls") == EXPECTED_CALL_COLUMNS
    assert ledger.db.execute("SELECT cached_tokens, stage FROM calls").fetchall() == [(0, "core")]
    assert _columns(ledger.db, "publish_attempts") == EXPECTED_PUBLISH_COLUMNS
    assert migrate(ledger.db) == []  # idempotent
    ledger.close()


def test_cache_round_trip(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.db")
    call_id = ledger.record_call(CallRecord(
        run_id="r", persona="ava", stage="core", model="m", fingerprint="abc",
        request_json="[]", status="ok", response_text='{"x": 1}', prompt_tokens=5,
        completion_tokens=3,
    ))
    assert ledger.cached_output("abc") is None
    ledger.cache_output("abc", "core", '{"x": 1}', call_id)
    assert ledger.cached_output("abc") == ('{"x": 1}', "m")
    ledger.close()


def test_a_valid_call_and_its_cache_entry_are_one_transaction(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.db")
    record = CallRecord(run_id="r", persona="ava", stage="core", model="m", fingerprint="abc",
                        request_json="[]", status="ok", response_text='{"x": 1}')
    call_id = ledger.record_cached_call(record, '{"x": 1}')
    assert ledger.cached_output("abc") == ('{"x": 1}', "m")
    # A failure inside leaves neither row: no paid call recorded without its cache entry.
    with pytest.raises(sqlite3.ProgrammingError):
        ledger.record_cached_call(record, object())  # type: ignore[arg-type]  # unbindable
    assert ledger.db.execute("SELECT count(*) FROM calls").fetchone() == (1,)
    assert not ledger.db.in_transaction
    assert call_id == 1
    ledger.close()
