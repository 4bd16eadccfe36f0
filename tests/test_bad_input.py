"""Every bad input gets a clear message, a non-zero exit when the run failed, and loses nothing."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from conftest import server_settings
from openai_server import FakeOpenAIServer, Reply
from persona_foundry.errors import OutputError
from persona_foundry.pipeline import PersonaRunOptions, RunSummary, generate_personas
from persona_foundry.settings import Settings
from stage_replies import valid_reply

StartServer = Callable[..., FakeOpenAIServer]


def run(images: list[Path], out: Path, settings: Settings, **kwargs: Any) -> RunSummary:
    options = PersonaRunOptions(images=images, out_dir=out, **kwargs)
    return asyncio.run(generate_personas(options, settings))


def single_error(summary: RunSummary) -> str:
    (outcome,) = summary.outcomes
    assert outcome.status == "failed"
    return outcome.error or ""


@pytest.fixture
def server(start_server: StartServer) -> FakeOpenAIServer:
    return start_server()


def test_missing_file(server: FakeOpenAIServer, tmp_path: Path) -> None:
    summary = run([tmp_path / "nope.png"], tmp_path / "out", server_settings(server))
    assert "nope.png: file not found" in single_error(summary)
    assert summary.exit_code == 2
    assert server.chat_requests() == []


def test_directory(server: FakeOpenAIServer, tmp_path: Path) -> None:
    summary = run([tmp_path], tmp_path / "out", server_settings(server))
    assert "is a directory" in single_error(summary)


def test_non_image(server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("just text, not pixels")
    assert "not an image" in single_error(run([path], tmp_path / "out", server_settings(server)))


def test_empty_file(server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "empty file" in single_error(run([path], tmp_path / "out", server_settings(server)))


def test_truncated_png(server: FakeOpenAIServer, make_image, tmp_path: Path) -> None:
    path = make_image("whole.png", size=(300, 300))
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    error = single_error(run([cut], tmp_path / "out", server_settings(server)))
    assert "corrupt or truncated" in error


def test_decompression_bomb(server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(path)  # tiny file, 100 MP once decoded
    assert path.stat().st_size < 200_000
    error = single_error(run([path], tmp_path / "out", server_settings(server)))
    assert "too large" in error and "decompression bomb" in error.lower()


def test_unsupported_format(server: FakeOpenAIServer, tmp_path: Path) -> None:
    path = tmp_path / "scan.tiff"
    Image.new("RGB", (32, 32)).save(path, format="TIFF")
    error = single_error(run([path], tmp_path / "out", server_settings(server)))
    assert "unsupported image format TIFF" in error


def test_duplicates_in_one_batch_run_once(server: FakeOpenAIServer, make_image,
                                          tmp_path: Path) -> None:
    first = make_image("ava.png")
    copy = tmp_path / "copy_of_ava.png"
    copy.write_bytes(first.read_bytes())
    summary = run([first, copy, first], tmp_path / "out", server_settings(server))

    statuses = [(o.image.name, o.status) for o in summary.outcomes]
    assert sorted(statuses) == sorted(
        [("ava.png", "ok"), ("copy_of_ava.png", "skipped"), ("ava.png", "skipped")]
    )
    assert all("duplicate of" in (o.error or "") for o in summary.outcomes if o.status != "ok")
    assert len(server.chat_requests("core")) == 1
    assert summary.exit_code == 0


def test_output_folder_that_cannot_be_written(server: FakeOpenAIServer, make_image,
                                              tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write to output folder"):
        run([make_image()], blocker / "out", server_settings(server))


def test_wrong_key_fails_fast_with_one_message(start_server: StartServer, make_image,
                                               tmp_path: Path) -> None:
    server = start_server(api_key="the-right-key")
    images = [make_image(f"k{n}.png") for n in range(3)]
    summary = run(images, tmp_path / "out", server_settings(server))

    assert summary.exit_code == 2
    assert summary.fatal_error is not None and "401" in summary.fatal_error
    assert "LLM_API_KEY" in summary.fatal_error
    assert server.chat_requests() == []  # the preflight caught it: no call per persona
    assert {o.error for o in summary.outcomes} == {summary.fatal_error}


def test_key_revoked_mid_run_stops_everything(start_server: StartServer, make_image,
                                              tmp_path: Path) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        if body["response_format"]["json_schema"]["name"] != "core":
            return Reply(status=401)
        return valid_reply(body)

    server = start_server(responder)
    summary = run([make_image(f"r{n}.png") for n in range(3)], tmp_path / "out",
                  server_settings(server, max_concurrent=2))

    assert summary.exit_code == 2 and "401" in (summary.fatal_error or "")
    non_core = [r for r in server.chat_requests() if r.schema_name != "core"]
    assert len(non_core) <= 2  # only calls already in flight; nothing retried


def test_unreachable_endpoint(make_image, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    settings = Settings(_env_file=None, llm_base_url=f"http://127.0.0.1:{port}/v1",  # type: ignore[call-arg]
                        llm_api_key="k", max_attempts=2)
    summary = run([make_image()], tmp_path / "out", settings)
    assert summary.exit_code == 2
    assert "cannot reach the LLM endpoint" in (summary.fatal_error or "")
    assert "LLM_BASE_URL" in (summary.fatal_error or "")


def test_model_that_never_answers_json(start_server: StartServer, make_image,
                                       tmp_path: Path) -> None:
    server = start_server(lambda body: Reply("Sure! Here is a persona: Ava, 33, engineer."))
    summary = run([make_image()], tmp_path / "out", server_settings(server))

    error = single_error(summary)
    assert "no valid reply after 3 attempts" in error and "Sure! Here is a persona" in error
    assert summary.exit_code == 2
    assert not list((tmp_path / "out").glob("personas/*.json"))


def test_image_names_cannot_escape_and_stay_unique(server: FakeOpenAIServer, make_image,
                                                   tmp_path: Path) -> None:
    names = ["..%2F..%2Fetc%2Fx.png", "アヴァ.png", "🔥🔥.png", "💧💧.png", "con.png"]
    images = [make_image(name) for name in names]
    summary = run(images, tmp_path / "out", server_settings(server))

    assert summary.succeeded == len(names)
    cards = sorted(p.name for p in (tmp_path / "out" / "personas").glob("*.json"))
    assert len(set(cards)) == len(names)
    assert "アヴァ_persona.json" in cards
    kept = sorted(p.name for p in (tmp_path / "out" / "personas").glob("*.png"))
    assert [name.removesuffix(".png") for name in kept] == [
        name.removesuffix(".json") for name in cards]  # each card's image copy beside it
    for outcome in summary.outcomes:
        assert outcome.card_path is not None
        assert outcome.card_path.resolve().is_relative_to((tmp_path / "out").resolve())


def test_existing_card_of_another_image_is_not_overwritten(
    server: FakeOpenAIServer, make_image, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = make_image("ava.png")
    run([first], out, server_settings(server))
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    other = other_folder / "ava.png"
    Image.new("RGB", (50, 50), (1, 2, 3)).save(other)

    summary = run([other], out, server_settings(server))
    assert summary.outcomes[0].card_path == out / "personas" / "ava_persona-2.json"
    original = json.loads((out / "personas" / "ava_persona.json").read_text())
    assert original["data"]["extensions"]["persona_foundry"]["source_image"]["name"] == "ava.png"

    replaced = run([other], out, server_settings(server), overwrite=True)
    assert replaced.outcomes[0].card_path in (out / "personas" / "ava_persona-2.json",
                                              out / "personas" / "ava_persona.json")
