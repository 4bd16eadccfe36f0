"""Shared fixtures: a real local OpenAI-compatible server, test images, isolated settings."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from openai_server import FakeOpenAIServer, Responder
from persona_foundry.settings import Settings
from schema_server import schema_responder
from stage_replies import valid_reply

TEST_API_KEY = "sk-test-SECRET-0123456789"
EXAMPLE_IMAGE = Path(__file__).parent.parent / "examples" / "astronaut.png"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer .env, LLM_* variable or model cache leaks into a test."""
    for name in ("LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL", "LLM_VISION_MODEL",
                 "LLM_MULTIMODAL", "MAX_CONCURRENT", "LOCAL_MODEL_PATH", "STAGE_MODELS",
                 "HTTP_WORKER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def start_server() -> Iterator[Callable[..., FakeOpenAIServer]]:
    """Start FakeOpenAIServer instances that are stopped after the test."""
    servers: list[FakeOpenAIServer] = []

    def start(responder: Responder = valid_reply, **kwargs: Any) -> FakeOpenAIServer:
        server = FakeOpenAIServer(responder, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def schema_server(request: pytest.FixtureRequest) -> Iterator[FakeOpenAIServer]:
    """A server answering every request with a random instance of the schema it sent.

    The seed is 0, or what an indirect parametrization gives:
    `@pytest.mark.parametrize("schema_server", [1, 2, 3], indirect=True)`.
    """
    server = FakeOpenAIServer(schema_responder(getattr(request, "param", 0))).start()
    yield server
    server.stop()


def server_settings(server: FakeOpenAIServer, **overrides: Any) -> Settings:
    """Settings pointing at a test server, with test-friendly limits."""
    values: dict[str, Any] = {
        "llm_base_url": server.base_url, "llm_api_key": TEST_API_KEY,
        "llm_model": "test-model", "max_attempts": 3, "request_timeout_s": 20,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """Write a small PNG whose pixels differ per name (so no two are duplicates)."""

    def make(name: str = "ava.png", size: tuple[int, int] = (96, 128)) -> Path:
        path = tmp_path / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(name.encode()).digest()
        image = Image.new("RGB", size, (digest[0], digest[1], digest[2]))
        image.putpixel((0, 0), (digest[3], digest[4], digest[5]))
        image.save(path, format="PNG")
        return path

    return make
