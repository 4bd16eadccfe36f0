"""`usage`: tokens, calls, retries, failures, latency percentiles and cost, from the ledger."""

from __future__ import annotations

import sqlite3
import statistics
from dataclasses import dataclass, field
from typing import Literal

from .costs import ModelPrice, call_cost, price_for

GroupBy = Literal["persona", "stage", "model", "day", "run"]
GROUP_COLUMNS: dict[str, str] = {
    "persona": "persona", "stage": "stage", "model": "model",
    "day": "substr(created_at, 1, 10)", "run": "run_id",
}


@dataclass
class UsageRow:
    """Totals of one group."""

    key: str
    calls: int = 0
    retries: int = 0
    failures: int = 0
    invalid: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latencies_ms: list[int] = field(default_factory=list)

    def latency_percentile(self, percent: int) -> float:
        """Latency percentile in ms over the successful and invalid calls."""
        if not self.latencies_ms:
            return 0.0
        if len(self.latencies_ms) == 1:
            return float(self.latencies_ms[0])
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[percent - 1]


def usage_rows(db: sqlite3.Connection, by: GroupBy,
               prices: dict[str, ModelPrice]) -> list[UsageRow]:
    """One row per group, sorted by cost then calls."""
    # The grouping column comes from GROUP_COLUMNS, never from user text.
    query = (f"SELECT {GROUP_COLUMNS[by]}, model, status, attempts, prompt_tokens, "
             "cached_tokens, completion_tokens, latency_ms FROM calls")
    rows: dict[str, UsageRow] = {}
    for key, model, status, attempts, prompt, cached, completion, latency in db.execute(query):
        row = rows.setdefault(str(key), UsageRow(str(key)))
        row.calls += 1
        row.retries += max(0, attempts - 1)
        row.failures += status == "error"
        row.invalid += status == "invalid"
        row.prompt_tokens += prompt
        row.cached_tokens += cached
        row.completion_tokens += completion
        row.cost_usd += call_cost(price_for(model, prices), prompt, cached, completion)
        if status != "error":
            row.latencies_ms.append(latency)
    return sorted(rows.values(), key=lambda r: (-r.cost_usd, -r.calls, r.key))
