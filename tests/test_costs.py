"""Prices, the run's cost, the budget stop (and resume), and the usage command."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import server_settings
from persona_foundry.cli import app
from persona_foundry.costs import DEFAULT_PRICES, BudgetGuard, ModelPrice, call_cost, price_for
from persona_foundry.errors import BudgetExceededError
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from persona_foundry.settings import Settings


def test_price_lookup() -> None:
    prices = {**DEFAULT_PRICES, "custom": ModelPrice(input=1, cached_input=0.5, output=2)}
    assert price_for("gpt-4o-mini", prices) == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("openai/gpt-4o-mini", prices) == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-mini-2024-07-18", prices) == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-11-20", prices) == DEFAULT_PRICES["gpt-4o"]
    assert price_for("local:qwen.gguf", prices) == ModelPrice(input=0, cached_input=0, output=0)
    assert price_for("mystery-model", prices) is None
    assert price_for("custom", prices) == prices["custom"]


def test_call_cost_arithmetic() -> None:
    price = DEFAULT_PRICES["gpt-4o-mini"]
    # 800k fresh × 0.15 + 200k cached × 0.075 + 100k out × 0.60, per million.
    assert call_cost(price, 1_000_000, 200_000, 100_000) == pytest.approx(0.195)
    assert call_cost(None, 1_000_000, 0, 1_000_000) == 0.0


def test_prices_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRICES", json.dumps({"my-model": {"input": 3, "cached_input": 1,
                                                          "output": 9}}))
    table = Settings(_env_file=None).price_table()  # type: ignore[call-arg]
    assert table["my-model"].output == 9 and "gpt-4o" in table


def test_budget_guard_reserves_the_worst_case() -> None:
    guard = BudgetGuard(0.02, DEFAULT_PRICES)
    reserved = guard.reserve("gpt-4o", prompt_chars=4000, max_tokens=1000)
    assert reserved == pytest.approx((1000 * 2.5 + 1000 * 10) / 1e6)
    guard.settle(reserved, "gpt-4o", 1000, 0, 100)
    assert guard.spent_usd == pytest.approx((1000 * 2.5 + 100 * 10) / 1e6)
    assert guard.reserved_usd == pytest.approx(0)
    with pytest.raises(BudgetExceededError, match="budget"):
        guard.reserve("gpt-4o", prompt_chars=4000, max_tokens=10_000)


def _ledger_cost(path: Path) -> float:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT model, prompt_tokens, cached_tokens, completion_tokens "
                          "FROM calls").fetchall()
    return sum(call_cost(price_for(m, DEFAULT_PRICES), p, c, o) for m, p, c, o in rows)


def test_run_cost_then_budget_stop_and_resume(start_server, make_image, tmp_path: Path) -> None:
    server = start_server()
    images = [make_image(f"{n}.png") for n in "ab"]
    out = tmp_path / "out"
    settings = server_settings(server, llm_model="gpt-4o", max_concurrent=1, budget_usd=0.02)
    stopped = asyncio.run(generate_personas(PersonaRunOptions(images=images, out_dir=out,
                                                              link_batch=False), settings))

    assert stopped.fatal_error is not None and "budget $0.0200 reached" in stopped.fatal_error
    paid = [json.dumps(r.body, sort_keys=True) for r in server.chat_requests()]
    assert 0 < len(paid) < 14
    assert stopped.cost_usd == pytest.approx(_ledger_cost(out / "ledger.db"))
    assert stopped.cost_usd <= 0.02

    richer = server_settings(server, llm_model="gpt-4o", max_concurrent=1, budget_usd=1.0)
    resumed = asyncio.run(generate_personas(PersonaRunOptions(images=images, out_dir=out,
                                                              link_batch=False), richer))
    assert resumed.exit_code == 0 and resumed.succeeded == 2
    again = [json.dumps(r.body, sort_keys=True) for r in server.chat_requests()[len(paid):]]
    assert not set(again) & set(paid)  # nothing paid for twice
    assert len(paid) + len(again) == 14


def test_usage_command(start_server, make_image, tmp_path: Path) -> None:
    server = start_server()
    out = tmp_path / "out"
    asyncio.run(generate_personas(PersonaRunOptions(images=[make_image()], out_dir=out),
                                  server_settings(server, llm_model="gpt-4o-mini")))
    wide = {"COLUMNS": "200"}  # the table has 11 columns
    by_stage = CliRunner().invoke(app, ["usage", "--out", str(out), "--by", "stage"], env=wide)
    assert by_stage.exit_code == 0, by_stage.output
    assert "lorebook" in by_stage.output and "total: 7 calls" in by_stage.output
    by_model = CliRunner().invoke(app, ["usage", "--out", str(out), "--by", "model"], env=wide)
    assert "gpt-4o-mini" in by_model.output
    expected = f"${_ledger_cost(out / 'ledger.db'):.4f}"
    assert expected in by_model.output
    missing = CliRunner().invoke(app, ["usage", "--out", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
