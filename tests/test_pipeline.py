"""The persona pipeline end to end against a real local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_API_KEY, server_settings
from openai_server import FakeOpenAIServer, Reply, SeenRequest
from persona_foundry.pipeline import PersonaRunOptions, RunSummary, check_inputs, generate_personas
from persona_foundry.stages import STAGES_BY_NAME
from persona_foundry.stages.base import InputParam, PersonaInput, Stage
from schema_server import schema_responder
from stage_replies import schema_name, valid_reply

StartServer = Callable[..., FakeOpenAIServer]
LATENCY_S = 0.3
REQUIRED_V2_KEYS = {
    "name", "description", "personality", "scenario", "first_mes", "mes_example",
    "creator_notes", "system_prompt", "post_history_instructions", "alternate_greetings",
    "tags", "creator", "character_version", "extensions",
}


def run(images: list[Path], out: Path, server: FakeOpenAIServer, **kwargs: Any) -> RunSummary:
    settings = server_settings(server, **kwargs.pop("settings", {}))
    options = PersonaRunOptions(images=images, out_dir=out, **kwargs)
    return asyncio.run(generate_personas(options, settings))


def load_card(path: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return card


def test_one_persona_makes_a_complete_v2_card(start_server: StartServer, make_image,
                                              tmp_path: Path) -> None:
    server = start_server()
    summary = run([make_image("ava.png")], tmp_path / "out", server)

    assert summary.exit_code == 0, summary.outcomes
    card_path = tmp_path / "out" / "personas" / "ava_persona.json"
    card = load_card(card_path)
    assert card["spec"] == "chara_card_v2" and card["spec_version"] == "2.0"
    assert card["data"].keys() >= REQUIRED_V2_KEYS  # SillyTavern's validator's 14
    drawn = card["data"]["extensions"]["persona_foundry"]["draw"]
    assert card["data"]["name"] == drawn["name"] and drawn["name_from"] == "drawn"
    book = card["data"]["character_book"]
    assert [entry["id"] for entry in book["entries"]] == [1, 2, 3, 4, 5, 6]
    assert isinstance(card["data"]["tags"], list) and card["data"]["tags"]
    extension = card["data"]["extensions"]["persona_foundry"]
    for stage in ("core", "strategy", "example_tweets", "social", "authenticity", "visual"):
        assert extension[stage] is not None
        assert extension["stages"][stage]["status"] == "ok"
    assert extension["usage"]["completion_tokens"] > 0
    assert "Today's CO2 scrubber test" in card["data"]["mes_example"]


def test_stages_overlap_as_the_dag_allows(start_server: StartServer, make_image,
                                          tmp_path: Path) -> None:
    server = start_server(latency_s=LATENCY_S)
    summary = run([make_image()], tmp_path / "out", server)

    assert summary.exit_code == 0
    by_stage = {request.schema_name: request for request in server.chat_requests()}
    core = by_stage["core"]
    leaves = [by_stage[name] for name in ("strategy", "social", "authenticity", "visual",
                                          "lorebook")]
    assert all(request.started >= core.finished - 0.01 for request in leaves)
    # 2, 4, 5, 6 and 7 were all in flight at one moment, right after 1.
    assert max(r.started for r in leaves) < min(r.finished for r in leaves)
    assert by_stage["example_tweets"].started >= by_stage["strategy"].finished - 0.01
    # The critical path is three calls long; the original plan (1→2→3, then 4–7) is four.
    assert summary.wall_s < 3 * LATENCY_S + 0.6


def test_batch_shares_one_global_limit(start_server: StartServer, make_image,
                                       tmp_path: Path) -> None:
    server = start_server(latency_s=0.1)
    images = [make_image(f"p{n}.png") for n in range(5)]
    summary = run(images, tmp_path / "out", server, settings={"max_concurrent": 3})

    assert summary.succeeded == 5
    assert server.max_in_flight == 3
    assert len(server.chat_requests()) == 35
    names = {load_card(o.card_path)["data"]["name"] for o in summary.outcomes if o.card_path}
    assert len(names) == 5


def test_waiting_personas_start_before_leaf_stages(start_server: StartServer, make_image,
                                                   tmp_path: Path) -> None:
    server = start_server(latency_s=0.05)
    images = [make_image(f"q{n}.png") for n in range(4)]
    run(images, tmp_path / "out", server, settings={"max_concurrent": 1})

    order = [request.schema_name for request in server.chat_requests()]
    # With one slot, every persona's stage 1 goes before any persona's leaf stages (all four
    # are admitted at once: a batch admits 4 × MAX_CONCURRENT personas, and at least 8).
    assert order[:4] == ["core"] * 4


def test_failed_stage_keeps_the_card_and_rerun_redoes_only_it(
    start_server: StartServer, make_image, tmp_path: Path
) -> None:
    broken = {"social"}

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) in broken:
            return Reply(status=500)
        return valid_reply(body)

    server = start_server(responder)
    image = make_image("ava.png")
    first = run([image], tmp_path / "out", server)

    assert first.exit_code == 1
    outcome = first.outcomes[0]
    assert outcome.status == "partial" and "social" in outcome.failed_stages
    card = load_card(outcome.card_path)
    extension = card["data"]["extensions"]["persona_foundry"]
    assert extension["stages"]["social"]["status"] == "failed"
    assert "500" in extension["stages"]["social"]["error"]
    assert extension["social"] is None
    calls_before = len(server.chat_requests())

    broken.clear()
    second = run([image], tmp_path / "out", server)

    assert second.exit_code == 0
    new_calls = server.chat_requests()[calls_before:]
    assert [request.schema_name for request in new_calls] == ["social"]
    assert second.outcomes[0].card_path == outcome.card_path
    card = load_card(outcome.card_path)
    assert card["data"]["extensions"]["persona_foundry"]["social"]["relationships"]


def test_rerun_after_everything_succeeded_calls_nothing(
    start_server: StartServer, make_image, tmp_path: Path
) -> None:
    server = start_server()
    image = make_image()
    run([image], tmp_path / "out", server)
    calls = len(server.chat_requests())
    (tmp_path / "out" / "personas" / "ava_persona.json").unlink()  # even without the card

    again = run([image], tmp_path / "out", server)

    assert again.exit_code == 0
    assert len(server.chat_requests()) == calls  # all from the ledger's cache
    card = load_card(again.outcomes[0].card_path)
    stages = card["data"]["extensions"]["persona_foundry"]["stages"]
    assert all(s["from_cache"] and s["model"] == "test-model" for s in stages.values())


def test_failed_core_means_no_card_but_others_go_on(
    start_server: StartServer, make_image, tmp_path: Path
) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        text = json.dumps(body["messages"])
        if schema_name(body) == "core" and "bad.png" in text:
            return Reply("I'd rather not answer in JSON.")
        return valid_reply(body)

    server = start_server(responder)
    summary = run([make_image("bad.png"), make_image("good.png")], tmp_path / "out", server)

    by_image = {o.image.name: o for o in summary.outcomes}
    assert by_image["bad.png"].status == "failed"
    assert "no card" in (by_image["bad.png"].error or "")
    assert by_image["good.png"].status == "ok"
    assert not (tmp_path / "out" / "personas" / "bad_persona.json").exists()
    assert summary.exit_code == 1
    # The broken reply was re-asked twice with the validation error, then given up.
    core_calls = [r for r in server.chat_requests("core") if "bad.png" in r.text]
    assert len(core_calls) == 3
    assert "does not match the required JSON schema" in core_calls[1].text


def test_invalid_reply_is_repaired_by_reask(start_server: StartServer, make_image,
                                            tmp_path: Path) -> None:
    attempts: list[int] = []

    def responder(body: dict[str, Any]) -> Reply:
        if schema_name(body) == "strategy" and not attempts:
            attempts.append(1)
            reply = json.loads(valid_reply(body).content or "")
            reply["emoji_use"] = "constantly"
            return Reply(json.dumps(reply))
        return valid_reply(body)

    server = start_server(responder)
    summary = run([make_image()], tmp_path / "out", server)

    assert summary.exit_code == 0
    second = server.chat_requests("strategy")[1]
    assert "emoji_use" in second.text and "constantly" in second.text


def test_api_key_never_reaches_output_files(start_server: StartServer, make_image,
                                            tmp_path: Path) -> None:
    server = start_server(api_key=TEST_API_KEY)
    summary = run([make_image()], tmp_path / "out", server)

    assert summary.exit_code == 0
    assert server.chat_requests()[0].authorization == f"Bearer {TEST_API_KEY}"
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert TEST_API_KEY.encode() not in path.read_bytes(), path


def test_multimodal_model_gets_the_image_blind_model_gets_facts(
    start_server: StartServer, make_image, tmp_path: Path
) -> None:
    server = start_server()
    run([make_image("seen.png")], tmp_path / "a", server, settings={"llm_multimodal": True})
    run([make_image("blind.png")], tmp_path / "b", server)

    seen, blind = server.chat_requests("core")
    seen_parts = seen.body["messages"][1]["content"]
    assert seen_parts[1]["type"] == "image_url"
    assert seen_parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert "dominant colours" in blind.body["messages"][1]["content"]
    # The ledger keeps a hash of the image, not the image.
    ledger_bytes = (tmp_path / "a" / "ledger.db").read_bytes()
    assert b"<image sha256=" in ledger_bytes


def test_vision_model_serves_stage_one_only(start_server: StartServer, make_image,
                                            tmp_path: Path) -> None:
    server = start_server()
    run([make_image()], tmp_path / "out", server,
        settings={"llm_vision_model": "eyes-model", "stage_models": {"lorebook": "lore-model"}})

    models = {r.schema_name: r.body["model"] for r in server.chat_requests()}
    assert models["core"] == "eyes-model"
    assert models["lorebook"] == "lore-model"
    assert models["social"] == "test-model"


def _has_image(request: SeenRequest) -> bool:
    return any(isinstance(message["content"], list) and any(
        part.get("type") == "image_url" for part in message["content"])
        for message in request.body["messages"])


@pytest.mark.parametrize(("settings", "sees", "vision_model"), [
    ({"llm_vision_model": "eyes-model"}, {"core"}, "eyes-model"),
    ({"llm_multimodal": True}, {"core", "visual"}, "test-model"),
    ({"llm_multimodal": True, "llm_vision_model": "eyes-model"}, {"core", "visual"},
     "eyes-model"),
    ({}, set(), "test-model"),
    # An explicit STAGE_MODELS choice for stage 1 wins over the vision model; it sees only
    # if every model does (LLM_MULTIMODAL).
    ({"llm_vision_model": "eyes-model", "stage_models": {"core": "chosen"}}, set(), "chosen"),
], ids=["vision-model-only", "multimodal", "both", "neither", "stage-model-override"])
def test_the_image_goes_only_to_a_model_that_can_see(
        start_server: StartServer, make_image, tmp_path: Path, settings: dict[str, Any],
        sees: set[str], vision_model: str) -> None:
    server = start_server(schema_responder(7))  # replies generated from the schema sent
    run([make_image()], tmp_path / "out", server, settings=settings)

    requests = {r.schema_name: r for r in server.chat_requests()}
    assert {name for name, r in requests.items() if _has_image(r)} == sees
    assert requests["core"].body["model"] == vision_model
    assert requests["visual"].body["model"] == "test-model"
    blind_visual = requests["visual"].body["messages"][1]["content"]
    assert ("The image is attached." in str(blind_visual)) == ("visual" in sees)


def test_language_and_nsfw_level_reach_every_prompt(start_server: StartServer, make_image,
                                                    tmp_path: Path) -> None:
    server = start_server()
    run([make_image()], tmp_path / "out", server, language="Spanish", nsfw_level="suggestive")

    for request in server.chat_requests():
        system = request.body["messages"][0]["content"]
        assert "in Spanish" in system
        assert "suggestive" in system.lower()


def test_crash_mid_batch_then_rerun_repays_nothing(start_server: StartServer, make_image,
                                                   tmp_path: Path) -> None:
    server = start_server(latency_s=0.2)
    images = [str(make_image(f"c{n}.png")) for n in range(3)]
    env = {**os.environ, "LLM_BASE_URL": server.base_url, "LLM_API_KEY": TEST_API_KEY,
           "LLM_MODEL": "test-model", "MAX_CONCURRENT": "2"}
    argv = [sys.executable, "-m", "persona_foundry", "persona", *images, "--out",
            str(tmp_path / "out")]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len([r for r in server.chat_requests() if r.finished]) < 8:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = time.monotonic()
    # Replies the dead process had surely received and recorded before it died:
    paid = [json.dumps(r.body, sort_keys=True) for r in server.chat_requests()
            if r.finished and r.finished < killed_at - 0.15]
    first_run_calls = len(server.chat_requests())

    summary = run([Path(p) for p in images], tmp_path / "out", server)

    assert summary.succeeded == 3
    again = [json.dumps(r.body, sort_keys=True) for r in server.chat_requests()[first_run_calls:]]
    assert not set(again) & set(paid)
    assert len(paid) >= 6
    assert len(again) <= 21 - len(paid)  # only what the dead run had not received


def test_a_persona_card_exports_with_its_own_source_image(
        start_server: StartServer, make_image, tmp_path: Path) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from persona_foundry.cli import app

    image = make_image("ava.png")
    summary = run([image], tmp_path / "out", server := start_server(schema_responder(3)))
    assert summary.exit_code == 0 and server.chat_requests()
    card = tmp_path / "out" / "personas" / "ava_persona.json"
    kept = card.with_suffix(".png")
    assert kept.read_bytes() == image.read_bytes()  # beside the card, byte for byte
    result = CliRunner().invoke(app, ["export", str(card), "-f", "png", "--out",
                                      str(tmp_path / "exports")])
    assert result.exit_code == 0 and "placeholder" not in result.output, result.output
    (exported,) = (tmp_path / "exports").glob("*.png")
    source_colour = Image.open(image).convert("RGB").getpixel((5, 5))
    assert Image.open(exported).convert("RGB").getpixel((5, 5)) == source_colour


class InFlight:
    """A progress display that counts the personas begun and not yet done."""

    def __init__(self) -> None:
        self.begun: set[str] = set()
        self.done = 0
        self.most = 0

    def started(self, total: int, backend: str, window: Callable[[], int | None]) -> None:
        """The run's start: nothing to count."""

    def stage_event(self, kind: str, persona: str, result: Any) -> None:
        self.begun.add(persona)
        self.most = max(self.most, len(self.begun) - self.done)

    def persona_done(self, outcome: Any) -> None:
        self.done += 1


def test_a_batch_streams_through_a_bounded_number_of_personas(start_server: StartServer,
                                                              make_image,
                                                              tmp_path: Path) -> None:
    server = start_server(latency_s=0.01)
    images = [make_image(f"s{n:02d}.png") for n in range(20)]
    progress = InFlight()
    options = PersonaRunOptions(images=images, out_dir=tmp_path / "out")
    summary = asyncio.run(generate_personas(options, server_settings(server, max_concurrent=1),
                                            progress=progress))
    assert summary.succeeded == 20
    # 4 × MAX_CONCURRENT, at least 8, are admitted at once; the old pipeline began all 20.
    assert progress.most <= 8
    # Linked in cohorts of 4 consecutive images: every peer offered is from the same cohort.
    cards = {json.loads(p.read_text())["data"]["name"]: p.name
             for p in (tmp_path / "out" / "personas").glob("*.json")}
    for request in server.chat_requests("social"):
        text = request.body["messages"][1]["content"]
        own = cards[json.loads(text.split("## Persona core\n", 1)[1].split("\n", 1)[0])["name"]]
        peers = re.findall(r"^- (.+?) \(@", text.split("People they may know", 1)[1], re.M)
        assert peers and all(int(cards[p][1:3]) // 4 == int(own[1:3]) // 4 for p in peers)


def test_a_stage_gets_exactly_the_inputs_it_declares() -> None:
    persona = PersonaInput("a.png", "facts")
    lorebook = STAGES_BY_NAME["lorebook"]
    # A declared input missing from the run falls back to its declared default …
    assert lorebook.context(persona).inputs == {"lorebook_entries": 6}
    # … and a stage sees none of the inputs other stages declare.
    supplied = {"lorebook_entries": 3, "name": "Ana Ortiz", "peers": "- Bo"}
    assert lorebook.context(persona, supplied=supplied).inputs == {"lorebook_entries": 3}
    assert STAGES_BY_NAME["strategy"].context(persona, supplied=supplied).inputs == {}
    assert lorebook.validation_context(lorebook.context(persona, supplied=supplied)) == {
        "lorebook_entries": 3}
    # An input no table supplies is refused when the stages are declared, not ignored.
    odd = Stage(name="mood", depends_on=(), output_model=lorebook.output_model,
                build_messages=lorebook.build_messages, estimated_s=1,
                inputs=(InputParam("weather", "today's weather"),))
    with pytest.raises(ValueError, match="'mood' declares inputs \\['weather'\\]"):
        check_inputs((odd,))
