"""Exports and imports of cards from strangers: no silent overwrite, and no file off the user's
disk pulled in by a path a card names."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cardfiles import card_bytes, picture, run_cli, says, v2_card, write_json, write_png_card

RED = (200, 40, 40)


def exported_names(folder: Path) -> dict[str, str]:
    return {path.name: json.loads(path.read_text("utf-8"))["data"]["name"]
            for path in folder.glob("*.json")}


def test_export_never_overwrites_on_a_name_clash_and_keeps_emoji(tmp_path: Path) -> None:
    names = ["Ana 🌸", "Ana 🌺", "ana", "Ana"]
    cards = [write_json(tmp_path / f"c{n}.json", v2_card(name)) for n, name in enumerate(names)]
    out = tmp_path / "exports"

    first = run_cli("export", *cards, "-f", "v2", "--out", out)
    assert first.exit_code == 0
    assert exported_names(out) == {"ana_🌸.v2.json": "Ana 🌸", "ana_🌺.v2.json": "Ana 🌺",
                                   "ana.v2.json": "ana", "ana-2.v2.json": "Ana"}

    again = run_cli("export", cards[2], "-f", "v2", "-f", "png", "--out", out)
    assert again.exit_code == 0 and says(again, "ana-3.v2.json", "ana-3.png")
    assert exported_names(out)["ana.v2.json"] == "ana"  # the earlier file is untouched

    replaced = run_cli("export", cards[3], cards[2], "-f", "v2", "--overwrite", "--out", out)
    assert replaced.exit_code == 0
    after = exported_names(out)
    assert after["ana.v2.json"] == "Ana" and after["ana-2.v2.json"] == "ana"  # this run's own
    assert len(after) == 5  # files are never overwritten by another card of the same run


@pytest.fixture
def opened() -> Iterator[list[str]]:
    """The paths every open() of this test touched (an audit hook: cannot be fooled by us)."""
    seen: list[str] = []
    recording = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if recording[0] and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
            seen.append(os.fsdecode(args[0]))

    sys.addaudithook(hook)  # hooks cannot be removed; this one goes quiet after the test
    yield seen
    recording[0] = False


def pixel(png_or_charx: Path) -> tuple[int, ...]:
    if png_or_charx.suffix == ".charx":
        with zipfile.ZipFile(png_or_charx) as archive:
            data = archive.read("assets/icon/images/main.png")
    else:
        data = png_or_charx.read_bytes()
    return tuple(Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)))


def card_naming(path: Path, image: Path) -> dict[str, Any]:
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    return v2_card("Mallory", extensions={"persona_foundry": {"source_image": {
        "name": image.name, "path": str(image), "sha256": digest}}})


def test_export_never_opens_a_local_image_a_foreign_card_names(opened: list[str],
                                                               tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    secret = private / "holiday.png"
    secret.write_bytes(picture(RED))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    card = write_json(downloads / "mallory.json", card_naming(secret, secret))
    # A link inside the card's folder does not make the file outside it ours either.
    (downloads / "mallory.png").symlink_to(secret)
    linked = write_json(downloads / "linked.json", card_naming(downloads / "mallory.png", secret))

    opened.clear()
    result = run_cli("export", card, linked, "-f", "png", "-f", "charx", "--out",
                     tmp_path / "out")
    for exported in (tmp_path / "out").iterdir():
        assert pixel(exported) != RED, exported
    assert str(secret) not in opened
    assert result.exit_code == 0 and says(result, "not read", "--image")
    pictureless = run_cli("export", card, "-f", "v2", "--out", tmp_path / "v2")
    assert pictureless.exit_code == 0 and not says(pictureless, "note")


def test_export_uses_the_image_our_own_import_stored(tmp_path: Path) -> None:
    png = write_png_card(tmp_path / "ana.png", card_bytes(v2_card("Ana")), image=picture(RED))
    assert run_cli("import", png, "--out", tmp_path / "out").exit_code == 0
    stored = tmp_path / "out" / "personas" / "ana_persona.json"
    exported = run_cli("export", stored, "-f", "charx", "--out", tmp_path / "exports")
    assert exported.exit_code == 0 and not says(exported, "note")
    assert pixel(tmp_path / "exports" / "ana.charx") == RED


def test_import_forgets_the_path_a_json_card_names(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(picture(RED))
    card = write_json(tmp_path / "m.json", card_naming(secret, secret))
    assert run_cli("import", card, "--out", tmp_path / "out").exit_code == 0
    saved = json.loads((tmp_path / "out" / "personas" / "mallory_persona.json").read_text())
    recorded = saved["data"]["extensions"]["persona_foundry"]["source_image"]
    assert recorded == {"name": "secret.png",
                        "sha256": hashlib.sha256(secret.read_bytes()).hexdigest()}
