"""Card formats: round trips, the edge cases importers choke on, validate, import, CLI."""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin
from typer.testing import CliRunner

from persona_foundry.cards.charx import CARD_NAME, ICON_PATH
from persona_foundry.cards.eliza import to_eliza
from persona_foundry.cards.exchange import export_card, load_card, save_imported
from persona_foundry.cards.merge import CardMeta, merge_card
from persona_foundry.cards.png import read_chunks, text_chunks
from persona_foundry.cards.validate import file_problems, file_report
from persona_foundry.cli import app
from persona_foundry.errors import InputError
from persona_foundry.stages import STAGES_BY_NAME
from persona_foundry.stages.base import StageResult
from stage_replies import STAGE_REPLIES

ALL_FORMATS = ("v2", "v3", "png", "charx", "eliza")
UNICODE_NAME = "李小龍 🐉 אבי"


def our_card(name: str = "Ava Lindqvist") -> dict[str, Any]:
    results = {}
    for stage_name, reply in STAGE_REPLIES.items():
        model = STAGES_BY_NAME[stage_name].output_model
        output = model.model_validate({**reply, "name": name} if stage_name == "core" else reply)
        results[stage_name] = StageResult(stage_name, "ok", output=output)
    meta = CardMeta("ava.png", "/nowhere/ava.png", "0" * 64, {}, "English", "off",
                    "2026-11-22T10:00:00+00:00", "0.1.0")
    return merge_card(results, meta).model_dump(mode="json")


def write_json(path: Path, payload: Any) -> Path:
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def card_file(tmp_path: Path) -> Path:
    return write_json(tmp_path / "ava_persona.json", our_card())


def test_every_export_validates_and_round_trips(card_file: Path, tmp_path: Path) -> None:
    original = load_card(card_file)
    written = export_card(original, ALL_FORMATS, tmp_path / "exports")

    assert [p.name for p in written] == [
        "ava_lindqvist.v2.json", "ava_lindqvist.v3.json", "ava_lindqvist.png",
        "ava_lindqvist.charx", "ava_lindqvist.eliza.json"]
    for path in written:
        assert file_problems(path) == [], path
    for path in written[:4]:
        assert load_card(path).card == original.card, path


def test_png_card_chunks_are_exact_and_chara_comes_first(card_file: Path,
                                                         tmp_path: Path) -> None:
    source = tmp_path / "with_text.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by some editor")
    Image.new("RGB", (40, 40), (9, 9, 9)).save(source, pnginfo=info)
    (png,) = export_card(load_card(card_file), ("png",), tmp_path / "out", image=source)

    texts = text_chunks(read_chunks(png.read_bytes()))
    assert [keyword for keyword, _ in texts] == ["chara", "ccv3"]
    v2 = json.loads(base64.b64decode(texts[0][1]).decode("utf-8"))
    v3 = json.loads(base64.b64decode(texts[1][1]).decode("utf-8"))
    assert v2 == json.loads(card_file.read_text(encoding="utf-8"))
    assert v3["spec"] == "chara_card_v3" and v3["data"]["name"] == v2["data"]["name"]
    assert v3["data"]["assets"][0]["uri"] == "ccdefault:"
    assert all(entry["use_regex"] is False for entry in v3["data"]["character_book"]["entries"])


def test_charx_layout(card_file: Path, tmp_path: Path) -> None:
    (charx,) = export_card(load_card(card_file), ("charx",), tmp_path)
    with zipfile.ZipFile(charx) as archive:
        names = archive.namelist()
        card = json.loads(archive.read(CARD_NAME))
        Image.open(io.BytesIO(archive.read(ICON_PATH))).verify()
    assert names == [CARD_NAME, ICON_PATH]
    assert card["data"]["assets"] == [{"type": "icon", "uri": f"embeded://{ICON_PATH}",
                                       "name": "main", "ext": "png"}]


def test_unicode_survives_every_format(tmp_path: Path) -> None:
    path = write_json(tmp_path / "u.json", our_card(UNICODE_NAME))
    written = export_card(load_card(path), ALL_FORMATS, tmp_path / "exports")
    for exported in written[:4]:
        assert load_card(exported).card.data.name == UNICODE_NAME
    eliza = json.loads(written[4].read_text(encoding="utf-8"))
    assert eliza["name"] == UNICODE_NAME
    assert UNICODE_NAME.encode() in written[1].read_bytes()  # stored as text, not \u escapes


def _v2(**data_overrides: Any) -> dict[str, Any]:
    card = copy.deepcopy(our_card())
    card["data"].update(data_overrides)
    return card


@pytest.mark.parametrize(
    ("card", "problem"),
    [
        (_v2(tags="fun, space"), "data.tags: missing or not an array"),
        (_v2(alternate_greetings=None), "data.alternate_greetings"),
        (_v2(name=""), "data.name: empty"),
        ({**our_card(), "spec_version": "2"}, "spec_version"),
        ({"spec": "chara_card_v9", "data": {}}, "unknown value"),
    ],
)
def test_validate_catches_what_importers_reject(card: dict[str, Any], problem: str,
                                               tmp_path: Path) -> None:
    problems = file_problems(write_json(tmp_path / "bad.json", card))
    assert any(problem in line for line in problems), problems


def test_validate_catches_duplicate_entry_ids_and_missing_v3_fields(tmp_path: Path) -> None:
    card = our_card()
    for entry in card["data"]["character_book"]["entries"]:
        entry["id"] = 1
    assert any("duplicate ids" in p for p in file_problems(write_json(tmp_path / "d.json", card)))
    v3 = {**card, "spec": "chara_card_v3", "spec_version": "3.0"}
    problems = file_problems(write_json(tmp_path / "v3.json", v3))
    assert any("group_only_greetings" in p for p in problems)
    assert any("use_regex" in p for p in problems)


def test_validate_png_chunk_order_and_truncation(card_file: Path, tmp_path: Path) -> None:
    encoded = base64.b64encode(card_file.read_bytes()).decode()
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "first")
    info.add_text("chara", encoded)
    misordered = tmp_path / "misordered.png"
    Image.new("RGB", (8, 8)).save(misordered, pnginfo=info)
    assert any("not the first tEXt chunk" in p for p in file_problems(misordered))

    whole = misordered.read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole[: len(whole) - 30])
    assert any("truncated" in p for p in file_problems(truncated))
    with pytest.raises(InputError, match="truncated"):
        load_card(truncated)

    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert any("not a character card" in p for p in file_problems(plain))


def test_import_repairs_what_it_can(tmp_path: Path) -> None:
    card = _v2(character_book=None, tags="space", alternate_greetings=None)
    loaded = load_card(write_json(tmp_path / "messy.json", card))
    assert loaded.card.data.character_book.entries == []
    assert loaded.card.data.tags == ["space"]
    duplicated = our_card()
    for entry in duplicated["data"]["character_book"]["entries"]:
        entry["id"] = "same"
    fixed = load_card(write_json(tmp_path / "dupes.json", duplicated))
    assert [e.id for e in fixed.card.data.character_book.entries] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(InputError, match="name"):
        load_card(write_json(tmp_path / "noname.json", _v2(name="")))


def test_import_v1_card(tmp_path: Path) -> None:
    v1 = {"name": "Old Timer", "description": "A V1 card.", "personality": "gruff",
          "scenario": "a tavern", "first_mes": "What'll it be?", "mes_example": ""}
    path = write_json(tmp_path / "v1.json", v1)
    assert file_problems(path) == []
    loaded = load_card(path)
    assert loaded.card.data.name == "Old Timer" and loaded.format == "chara_card_v1"
    saved = save_imported(loaded, tmp_path / "out")
    assert saved == tmp_path / "out" / "personas" / "old_timer_persona.json"
    assert file_problems(saved) == []


def test_import_png_from_elsewhere_keeps_its_image(card_file: Path, tmp_path: Path) -> None:
    (png,) = export_card(load_card(card_file), ("png",), tmp_path / "x")
    saved = save_imported(load_card(png), tmp_path / "out")
    stored = json.loads(saved.read_text(encoding="utf-8"))
    ours = stored["data"]["extensions"]["persona_foundry"]
    assert ours["imported_from"] == {"file": png.name, "format": "png"}
    assert Path(ours["source_image"]["path"]).read_bytes() == png.read_bytes()
    assert ours["core"]["handle"] == "ava_orbits"  # our own stage data came along


def test_eliza_output_is_strict_and_complete(card_file: Path) -> None:
    eliza = to_eliza(load_card(card_file).card).model_dump(mode="json", exclude_none=True)
    assert set(eliza) <= {"name", "username", "system", "bio", "messageExamples", "postExamples",
                          "topics", "adjectives", "knowledge", "plugins", "settings", "secrets",
                          "style", "templates", "id"}
    for key in ("bio", "messageExamples", "postExamples", "topics", "adjectives"):
        assert eliza[key], key
    assert all(eliza["style"][key] for key in ("all", "chat", "post"))
    assert "Today's CO2 scrubber test: boring. Boring is good." in eliza["postExamples"]
    assert any("Lore fact number 1." in line for line in eliza["bio"])


def test_validate_flags_eliza_files_with_unknown_keys(card_file: Path, tmp_path: Path) -> None:
    eliza = to_eliza(load_card(card_file).card).model_dump(mode="json", exclude_none=True)
    assert file_problems(write_json(tmp_path / "ok.eliza.json", eliza)) == []
    eliza["lore"] = ["v0 key"]
    eliza["topics"] = []
    report = file_report(write_json(tmp_path / "bad.eliza.json", eliza))
    assert any("lore" in p for p in report.problems)
    # ElizaOS accepts an empty list; our exports never write one: a warning, labelled ours.
    assert not any("topics" in p for p in report.problems)
    assert any("topics" in w and "Persona Foundry's rule" in w for w in report.warnings)


def test_eliza_from_a_foreign_card_meets_minimums(tmp_path: Path) -> None:
    v1 = {"name": "Old Timer", "description": "A V1 card.", "personality": "gruff, kind",
          "scenario": "", "first_mes": "What'll it be?", "mes_example": ""}
    eliza = to_eliza(load_card(write_json(tmp_path / "v1.json", v1)).card)
    assert eliza.adjectives == ["gruff", "kind"] and eliza.postExamples == ["What'll it be?"]


def test_cli_export_validate_import(card_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    exported = runner.invoke(app, ["export", str(card_file), "-f", "all", "--out",
                                   str(tmp_path / "exp")])
    assert exported.exit_code == 0, exported.output
    files = sorted(str(p) for p in (tmp_path / "exp").iterdir())
    assert len(files) == 5
    checked = runner.invoke(app, ["validate", *files])
    assert checked.exit_code == 0, checked.output
    bad = write_json(tmp_path / "bad.json", _v2(tags="fun"))
    rejected = runner.invoke(app, ["validate", str(bad)])
    assert rejected.exit_code == 1 and "data.tags" in rejected.output
    imported = runner.invoke(app, ["import", files[0], "--out", str(tmp_path / "out")])
    assert imported.exit_code == 0, imported.output
    assert list((tmp_path / "out" / "personas").glob("*_persona.json"))
