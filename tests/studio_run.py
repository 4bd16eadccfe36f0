"""A real run for the studio's tests: three personas, their month and posts, made by the CLI
against the schema-following test server (tests/schema_server.py), once per test session.

The route tests and the browser tests copy it (`fresh_copy`) so each test edits its own folder.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from openai_server import FakeOpenAIServer
from persona_foundry.cli import app
from persona_foundry.settings import Settings
from persona_foundry.store import (
    OutputLayout,
    read_calendar,
    update_calendar,
    update_card_json,
    update_tweet_file,
)
from schema_server import schema_responder

MONTH = "2026-12"
PERSONAS = ("ava", "ben", "cleo")
POSTS_PER_PERSONA = 12
HOSTILE = "<script>alert(1)</script>"


@dataclass(frozen=True)
class StudioRun:
    """Where the run is and what it made."""

    out: Path
    keys: tuple[str, ...]
    month: str

    @property
    def layout(self) -> OutputLayout:
        """The run's output folder."""
        return OutputLayout(self.out)

    def drafted(self, key: str) -> list[str]:
        """Ids of the persona's drafted slots, in time order."""
        calendar = read_calendar(self.layout.calendar_path(key, self.month))
        return [slot.id for slot in calendar.slots if slot.status == "drafted"]


def env(server: FakeOpenAIServer, cache: Path) -> dict[str, str]:
    """The CLI's environment for the test server."""
    return {"LLM_BASE_URL": server.base_url, "LLM_API_KEY": "k", "LLM_MODEL": "m",
            "XDG_CACHE_HOME": str(cache)}


def settings_for(server: FakeOpenAIServer) -> Settings:
    """The studio's settings for the test server (regenerate, generate, retry)."""
    return Settings(_env_file=None, llm_base_url=server.base_url,  # type: ignore[call-arg]
                    llm_api_key="k", llm_model="m", max_attempts=3, request_timeout_s=20)


def _invoke(server: FakeOpenAIServer, cache: Path, *args: str | Path) -> None:
    result = CliRunner().invoke(app, [str(arg) for arg in args], env=env(server, cache))
    assert result.exit_code == 0, result.output


def make_studio_run(server: FakeOpenAIServer, folder: Path, images: list[Path]) -> StudioRun:
    """`persona` on the images (one batch: a social graph), then `calendar` and `tweets`."""
    out, cache = folder / "out", folder / "cache"
    _invoke(server, cache, "persona", *images, "--out", out)
    keys = tuple(f"{image.stem}" for image in images)
    cards = [OutputLayout(out).card_path(key) for key in keys]
    for card in cards:
        _invoke(server, cache, "calendar", card, "--month", MONTH, "--out", out)
    _invoke(server, cache, "tweets", *cards, "--count", str(POSTS_PER_PERSONA), "--month", MONTH,
            "--out", out)
    return StudioRun(out, keys, MONTH)


def fresh_copy(run: StudioRun, folder: Path) -> StudioRun:
    """The run copied to `folder`, paths inside its files pointing at the copy."""
    target = folder / "out"
    shutil.copytree(run.out, target, ignore=shutil.ignore_patterns("*.lock"))
    old, new = str(run.out.resolve()), str(target.resolve())
    for path in [*target.rglob("*.json")]:
        text = path.read_text(encoding="utf-8")
        if old in text:
            path.write_text(text.replace(old, new), encoding="utf-8")
    return StudioRun(target, run.keys, run.month)


def write_image(path: Path) -> Path:
    """A small PNG whose pixels differ per name (no two images of the batch are duplicates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(path.name.encode()).digest()
    image = Image.new("RGB", (96, 128), (digest[0], digest[1], digest[2]))
    image.putpixel((0, 0), (digest[3], digest[4], digest[5]))
    image.save(path, format="PNG")
    return path


@pytest.fixture(scope="session")
def studio_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioRun]:
    """The real run, made once per session against its own schema-following server."""
    folder = tmp_path_factory.mktemp("studio-run")
    server = FakeOpenAIServer(schema_responder(0)).start()
    try:
        images = [write_image(folder / "images" / f"{name}.png") for name in PERSONAS]
        yield make_studio_run(server, folder, images)
    finally:
        server.stop()


@pytest.fixture
def studio_copy(studio_source: StudioRun, tmp_path: Path) -> StudioRun:
    """This test's own copy of the run."""
    return fresh_copy(studio_source, tmp_path)


def make_hostile(run: StudioRun, key: str, slot_id: str) -> None:
    """A persona whose bio and one post are a script tag (through the store)."""

    def card(data: dict[str, Any]) -> None:
        data["data"]["description"] = HOSTILE
        data["data"]["extensions"]["persona_foundry"]["core"]["bio"] = HOSTILE

    update_card_json(run.layout.card_path(key), card)
    calendar_path = run.layout.calendar_path(key, run.month)
    tweet_file = read_calendar(calendar_path).slot(slot_id).tweet_file
    assert tweet_file
    update_tweet_file(Path(tweet_file), lambda t: setattr(t.record(slot_id), "text", HOSTILE))
    update_calendar(calendar_path, lambda c: setattr(c.slot(slot_id), "text", HOSTILE))
