"""The folder's identity index (identity_index.py): a stat per card, a read only when it changed."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from conftest import server_settings
from openai_server import FakeOpenAIServer
from persona_foundry.identity_index import folder_identities
from persona_foundry.pipeline import PersonaRunOptions, generate_personas
from persona_foundry.store.layout import OutputLayout


def _batch(server: FakeOpenAIServer, images: list[Path], out: Path) -> OutputLayout:
    summary = asyncio.run(generate_personas(
        PersonaRunOptions(images=images, out_dir=out), server_settings(server)))
    assert summary.succeeded == len(images)
    return OutputLayout(out)


def _identities_in_cards(layout: OutputLayout) -> dict[str, tuple[str, str]]:
    found = {}
    for path in layout.card_paths():
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        core = data["extensions"]["persona_foundry"]["core"]
        found[path.name] = (data["name"], core["handle"])
    return found


def _rewrite_keeping_stamp(path: Path, text: str) -> None:
    """New content in place (same inode), of the same size and mtime: only a read could tell."""
    stat = path.stat()
    path.write_text(text.ljust(stat.st_size), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _age(layout: OutputLayout, seconds: float = 60.0) -> None:
    """Every card written `seconds` ago: past the index's racy window."""
    for path in layout.card_paths():
        then = path.stat().st_mtime_ns - int(seconds * 1e9)
        os.utime(path, ns=(then, then))


def test_the_index_answers_for_cards_that_did_not_change(
    schema_server: FakeOpenAIServer, make_image: Any, tmp_path: Path,
) -> None:
    layout = _batch(schema_server, [make_image(f"p{n}.png") for n in range(3)], tmp_path / "out")
    _age(layout)
    expected = _identities_in_cards(layout)
    assert folder_identities(layout) == expected
    assert layout.identity_index_path.is_file()

    # A card garbled behind the index's back, stamp kept: the index answers, the card is not read.
    first = layout.card_paths()[0]
    _rewrite_keeping_stamp(first, "{}")
    assert folder_identities(layout) == expected


def test_a_changed_removed_or_foreign_card_is_read_again(
    schema_server: FakeOpenAIServer, make_image: Any, tmp_path: Path,
) -> None:
    layout = _batch(schema_server, [make_image(f"p{n}.png") for n in range(3)], tmp_path / "out")
    _age(layout)
    folder_identities(layout)
    renamed, removed, broken = layout.card_paths()

    card = json.loads(renamed.read_text(encoding="utf-8"))
    card["data"]["name"] = "Ottilie Brandt"
    card["data"]["extensions"]["persona_foundry"]["core"]["handle"] = "ottiliebrandt"
    renamed.write_text(json.dumps(card), encoding="utf-8")
    removed.unlink()
    broken.write_text("not json", encoding="utf-8")

    assert folder_identities(layout) == {renamed.name: ("Ottilie Brandt", "ottiliebrandt")}


def test_a_broken_index_is_rebuilt_from_the_cards(
    schema_server: FakeOpenAIServer, make_image: Any, tmp_path: Path,
) -> None:
    layout = _batch(schema_server, [make_image(f"p{n}.png") for n in range(2)], tmp_path / "out")
    expected = _identities_in_cards(layout)
    _age(layout)
    folder_identities(layout)
    stamps = {path.name: path.stat() for path in layout.card_paths()}
    foreign = {"version": 1, "cards": {name: ["big", 0, 0, "Someone Else", "x"]
                                       for name in expected}}
    older = {"version": 0, "cards": {name: [stat.st_size, stat.st_mtime_ns, stat.st_ino,
                                            "Someone Else", "x"]
                                     for name, stat in stamps.items()}}
    for garbage in (b"\xff not json", b"[1, 2]", json.dumps(foreign).encode(),
                    json.dumps(older).encode()):
        layout.identity_index_path.write_bytes(garbage)
        assert folder_identities(layout) == expected


def test_a_batch_into_an_indexed_folder_keeps_names_unique(
    schema_server: FakeOpenAIServer, make_image: Any, tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    _batch(schema_server, [make_image(f"a{n}.png") for n in range(3)], out)
    layout = _batch(schema_server, [make_image(f"b{n}.png") for n in range(3)], out)
    identities = list(_identities_in_cards(layout).values())
    assert len(identities) == 6
    assert len({name for name, _ in identities}) == 6
    assert len({handle for _, handle in identities}) == 6
    assert folder_identities(layout) == _identities_in_cards(layout)


def test_a_card_written_just_now_is_read_again_however_alike(
    schema_server: FakeOpenAIServer, make_image: Any, tmp_path: Path,
) -> None:
    layout = _batch(schema_server, [make_image("p0.png")], tmp_path / "out")
    (card,) = layout.card_paths()
    folder_identities(layout)  # the card is seconds old: not cached
    _rewrite_keeping_stamp(card, "{}")  # same size, mtime and inode
    assert folder_identities(layout) == {}


def test_a_card_with_the_name_a_batch_would_draw_keeps_it(
    schema_server: FakeOpenAIServer, make_image: Any, tmp_path: Path,
) -> None:
    images = [make_image(f"p{n}.png") for n in range(3)]
    drawn = _identities_in_cards(_batch(schema_server, images, tmp_path / "first"))
    taken = next(iter(drawn.values()))
    for stale_index in (False, True):
        out = tmp_path / f"again-{stale_index}"
        (out / "personas").mkdir(parents=True)
        if stale_index:  # an index from before the card came: the card is read all the same
            folder_identities(OutputLayout(out))
        holder = out / "personas" / "someone_persona.json"
        holder.write_bytes((tmp_path / "first" / "personas" / next(iter(drawn))).read_bytes())
        identities = _identities_in_cards(_batch(schema_server, images, out))
        assert identities[holder.name] == taken
        others = [identity for card, identity in identities.items() if card != holder.name]
        assert taken[0] not in {name for name, _ in others}
        assert taken[1] not in {handle for _, handle in others}
