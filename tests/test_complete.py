"""`persona --complete`: cards from elsewhere (or our partial ones) get their missing stages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from conftest import EXAMPLE_IMAGE, server_settings
from openai_server import FakeOpenAIServer, Reply
from persona_foundry.cards.exchange import export_card, load_card
from persona_foundry.completion import complete_cards
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from stage_replies import schema_name, valid_reply

StartServer = Callable[..., FakeOpenAIServer]
V1_CARD = {"name": "Captain Mira", "description": "A retired starship captain who bakes.",
           "personality": "stern, secretly sentimental", "scenario": "", "first_mes": "Sit.",
           "mes_example": ""}


def foreign_png_card(tmp_path: Path) -> Path:
    v1 = tmp_path / "mira.json"
    v1.write_text(json.dumps(V1_CARD))
    image = tmp_path / "mira_face.png"
    Image.open(EXAMPLE_IMAGE).save(image)
    (png,) = export_card(load_card(v1), ("png",), tmp_path / "from_elsewhere", image=image)
    return png


def test_foreign_png_card_is_completed_and_keeps_its_text(start_server: StartServer,
                                                          tmp_path: Path) -> None:
    server = start_server()
    png = foreign_png_card(tmp_path)
    options = PersonaRunOptions(images=[], out_dir=tmp_path / "out")
    summary = asyncio.run(complete_cards([png], options, server_settings(server)))

    assert summary.exit_code == 0, summary.outcomes
    (outcome,) = summary.outcomes
    card = json.loads(outcome.card_path.read_text(encoding="utf-8"))
    data = card["data"]
    assert data["name"] == "Captain Mira"
    assert data["description"] == V1_CARD["description"]
    assert data["first_mes"] == "Sit."
    assert data["mes_example"]  # was empty: filled from the generated example tweets
    assert len(data["character_book"]["entries"]) == 6
    ours = data["extensions"]["persona_foundry"]
    assert all(stage["status"] == "ok" for stage in ours["stages"].values())
    assert ours["imported_from"]["format"] == "png"
    core_prompt = server.chat_requests("core")[0].text
    assert "Captain Mira" in core_prompt and "apparent gender female" in core_prompt


def test_our_partial_card_completes_in_place(start_server: StartServer, make_image,
                                            tmp_path: Path) -> None:
    broken = {"lorebook"}

    def responder(body: dict[str, Any]) -> Reply:
        return Reply(status=500) if schema_name(body) in broken else valid_reply(body)

    server = start_server(responder)
    image = make_image("ava.png")
    first = asyncio.run(generate_personas(
        PersonaRunOptions(images=[image], out_dir=tmp_path / "out"), server_settings(server)))
    card_path = first.outcomes[0].card_path
    assert first.outcomes[0].status == "partial"
    before = len(server.chat_requests())

    broken.clear()
    options = PersonaRunOptions(images=[], out_dir=tmp_path / "out")
    summary = asyncio.run(complete_cards([card_path], options, server_settings(server)))

    assert summary.exit_code == 0 and summary.outcomes[0].card_path == card_path
    assert [r.schema_name for r in server.chat_requests()[before:]] == ["lorebook"]


def test_card_without_an_image_is_refused_clearly(start_server: StartServer,
                                                  tmp_path: Path) -> None:
    server = start_server()
    v1 = tmp_path / "mira.json"
    v1.write_text(json.dumps(V1_CARD))
    options = PersonaRunOptions(images=[], out_dir=tmp_path / "out")
    summary = asyncio.run(complete_cards([v1], options, server_settings(server)))

    assert summary.exit_code == 2
    assert "carries no image" in (summary.outcomes[0].error or "")
    assert server.chat_requests() == []


def test_a_foreign_card_cannot_make_completion_read_an_image_it_names(
        tmp_path: Path, make_image: Callable[..., Path]) -> None:
    import hashlib

    import pytest

    from persona_foundry.completion import seed_from
    from persona_foundry.errors import InputError

    secret = make_image("holiday.png")  # a private photo elsewhere on the disk
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    card = {"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Mallory", "description": "", "personality": "", "scenario": "",
        "first_mes": "", "mes_example": "", "creator_notes": "", "system_prompt": "",
        "post_history_instructions": "", "alternate_greetings": [], "tags": [], "creator": "",
        "character_version": "", "character_book": {"entries": []},
        "extensions": {"persona_foundry": {"source_image": {
            "name": secret.name, "path": str(secret), "sha256": digest}}}}}
    downloaded = tmp_path / "downloads" / "mallory.json"
    downloaded.parent.mkdir()
    downloaded.write_text(json.dumps(card), encoding="utf-8")

    with pytest.raises(InputError, match="no image to read"):
        seed_from(downloaded, tmp_path / "out")
