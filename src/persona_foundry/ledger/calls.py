"""Recording calls and reading cached replies."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

SQL_VARIABLES_PER_QUERY = 500  # well under SQLite's limit on bound parameters


@dataclass(frozen=True)
class CallRecord:
    """What one call (with its transport retries) cost and returned."""

    run_id: str
    persona: str
    stage: str
    model: str
    fingerprint: str
    request_json: str
    status: str  # "ok" | "invalid" | "error"
    response_text: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    latency_ms: int = 0
    attempts: int = 1
    error: str | None = None


@dataclass(frozen=True)
class TweetRecordRow:
    """One post's ledger row."""

    run_id: str
    persona: str
    slot_id: str
    status: str  # "drafted" | "rejected" | "failed"
    tweet_file: str | None = None
    reason: str | None = None
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    record_json: str | None = None  # the accepted post, for "drafted"


@dataclass(frozen=True)
class PublishAttemptRow:
    """One publish event of a slot (never a secret: the account is its label)."""

    run_id: str
    persona: str
    slot_id: str
    platform: str
    account: str
    idempotency_key: str
    status: str  # sending | posted | scheduled | found | rejected | deferred | error | live
    post_id: str | None = None
    url: str | None = None
    reason: str | None = None
    attempts: int = 1


class Ledger:
    """Append-only call log plus the reply cache, over one SQLite connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def record_call(self, record: CallRecord) -> int:
        """Append one call; return its row id."""
        cursor = self.db.execute(
            """
            INSERT INTO calls (run_id, persona, stage, model, fingerprint, request_json,
                response_text, prompt_tokens, completion_tokens, cached_tokens, latency_ms,
                attempts, status, error)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                record.run_id, record.persona, record.stage, record.model, record.fingerprint,
                record.request_json, record.response_text, record.prompt_tokens,
                record.completion_tokens, record.cached_tokens, record.latency_ms,
                record.attempts, record.status, record.error,
            ),
        )
        return int(cursor.lastrowid or 0)

    def record_cached_call(self, record: CallRecord, output_json: str) -> int:
        """Append one valid call and cache its output under its fingerprint, in one transaction.

        One commit instead of two per call: each WAL commit costs ~0.1 ms of the one thread
        that also sends the next calls, and a crash between the two left a paid call uncached.
        """
        self.db.execute("BEGIN")
        try:
            call_id = self.record_call(record)
            self.cache_output(record.fingerprint, record.stage, output_json, call_id)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return call_id

    def cache_output(self, fingerprint: str, stage: str, output_json: str, call_id: int) -> None:
        """Remember the validated output for a request fingerprint."""
        self.db.execute(
            "INSERT OR REPLACE INTO cache (fingerprint, stage, output_json, call_id) "
            "VALUES (?, ?, ?, ?)",
            (fingerprint, stage, output_json, call_id),
        )

    def cached_output(self, fingerprint: str) -> tuple[str, str] | None:
        """The validated output stored for this fingerprint and the model that wrote it."""
        row = self.db.execute(
            "SELECT cache.output_json, calls.model FROM cache "
            "LEFT JOIN calls ON calls.id = cache.call_id WHERE cache.fingerprint = ?",
            (fingerprint,),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1] or ""))

    def record_tweet(self, record: TweetRecordRow) -> None:
        """Append one post's verdict and its share of the call's tokens."""
        self.db.execute(
            "INSERT INTO tweets (run_id, persona, slot_id, tweet_file, status, reason, "
            "prompt_tokens, completion_tokens, record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.run_id, record.persona, record.slot_id, record.tweet_file, record.status,
             record.reason, record.prompt_tokens, record.completion_tokens, record.record_json),
        )

    def drafted_posts(self, persona: str, slot_ids: list[str]) -> dict[str, str]:
        """The latest accepted post (record JSON) of each of these slots, from any run."""
        found: dict[str, str] = {}
        for start in range(0, len(slot_ids), SQL_VARIABLES_PER_QUERY):
            chunk = slot_ids[start:start + SQL_VARIABLES_PER_QUERY]
            rows = self.db.execute(
                f"SELECT slot_id, record_json FROM tweets WHERE persona = ? AND status = 'drafted' "
                f"AND record_json IS NOT NULL AND slot_id IN ({', '.join('?' * len(chunk))}) "
                "ORDER BY id", (persona, *chunk))
            found.update({str(slot_id): str(record) for slot_id, record in rows})
        return found

    def record_publish(self, row: PublishAttemptRow) -> None:
        """Append one publish event (written before a post is sent, and after its answer)."""
        self.db.execute(
            "INSERT INTO publish_attempts (run_id, persona, slot_id, platform, account, "
            "idempotency_key, status, post_id, url, reason, attempts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.run_id, row.persona, row.slot_id, row.platform, row.account,
             row.idempotency_key, row.status, row.post_id, row.url, row.reason, row.attempts),
        )

    def close(self) -> None:
        """Close the connection."""
        self.db.close()
