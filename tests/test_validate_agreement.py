"""`validate` agrees with the importers it speaks for (SillyTavern, RisuAI, ElizaOS), and
exports are what they load (ElizaOS's own schema: test_eliza_schema.py)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from cardfiles import run_cli, says, v2_card, v3_card, write_charx, write_json
from persona_foundry.cards.eliza import DEFAULT_ELIZA_PLUGINS
from persona_foundry.cards.eliza_schema import eliza_problems, eliza_warnings


def test_eliza_plugin_flags_replace_the_default_plugin_list(tmp_path: Path) -> None:
    card = write_json(tmp_path / "ana.json", v2_card("Ana"))
    assert run_cli("export", card, "-f", "eliza", "--out", tmp_path / "a").exit_code == 0
    character = json.loads((tmp_path / "a" / "ana.eliza.json").read_text("utf-8"))
    assert character["plugins"] == list(DEFAULT_ELIZA_PLUGINS)

    chosen = ["@elizaos/plugin-sql", "@elizaos/plugin-ollama", "@elizaos/plugin-bootstrap"]
    flags = [arg for plugin in chosen for arg in ("--eliza-plugin", plugin)]
    assert run_cli("export", card, "-f", "eliza", *flags, "--out", tmp_path / "b").exit_code == 0
    character = json.loads((tmp_path / "b" / "ana.eliza.json").read_text("utf-8"))
    assert character["plugins"] == chosen
    assert eliza_problems(character) == [] and eliza_warnings(character) == []


def test_null_character_book_is_a_warning_that_names_who_rejects_it(tmp_path: Path) -> None:
    for name, card in {"v2": v2_card(character_book=None),
                       "v3": v3_card(character_book=None)}.items():
        result = run_cli("validate", write_json(tmp_path / f"{name}.json", card))
        assert result.exit_code == 0, result.output
        assert says(result, "warning", "SillyTavern and RisuAI accept it",
                    "character-card-utils) rejects it")


@pytest.mark.parametrize("member", ["../evil.txt", "/abs/evil.txt", "C:/evil.txt",
                                    "..\\evil.txt", "assets/../../evil.txt"])
def test_charx_member_names_that_stop_sillytavern_are_warned(member: str,
                                                            tmp_path: Path) -> None:
    raw = json.dumps(v3_card("Zip")).encode()
    charx = write_charx(tmp_path / "zip.charx", raw, {member: b"owned"})
    result = run_cli("validate", charx)
    assert result.exit_code == 0 and says(result, "warning", repr(member), "SillyTavern")
    imported = run_cli("import", charx, "--out", tmp_path / "out")
    assert imported.exit_code == 0
    assert [p.name for p in tmp_path.parent.rglob("evil.txt")] == []  # nothing extracted


def test_charx_icon_uri_out_of_the_archive_is_warned_and_not_followed(tmp_path: Path) -> None:
    uri = "embeded://../../card.json"
    card = v3_card("Escape", assets=[{"type": "icon", "uri": uri, "name": "main", "ext": "png"}])
    charx = write_charx(tmp_path / "escape.charx", json.dumps(card).encode())
    result = run_cli("validate", charx)
    assert result.exit_code == 0 and says(result, "warning", repr(uri), "points outside")
    assert run_cli("import", charx, "--out", tmp_path / "out").exit_code == 0
    assert not (tmp_path / "out" / "personas" / "escape_persona.png").exists()


def test_our_own_exports_still_validate_without_warnings(tmp_path: Path) -> None:
    card = write_json(tmp_path / "ana.json", v2_card("Ana"))
    assert run_cli("export", card, "-f", "all", "--out", tmp_path / "x").exit_code == 0
    files = sorted((tmp_path / "x").iterdir())
    result = run_cli("validate", *files)
    assert result.exit_code == 0 and not says(result, "warning"), result.output
    with zipfile.ZipFile(tmp_path / "x" / "ana.charx") as archive:
        assert archive.namelist() == ["card.json", "assets/icon/images/main.png"]
