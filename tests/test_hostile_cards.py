"""Cards from strangers: every hostile file gets a clear line, never a crash or a hang, and the
other files of the batch are still processed (limits in persona_foundry/cards/limits.py)."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cardfiles import (
    as_file,
    build_png,
    card_bytes,
    picture,
    png_chunks,
    run_command,
    says,
    v2_card,
    v3_card,
    write_charx,
    write_json,
    write_png_card,
)
from persona_foundry.cards.limits import (
    MAX_CARD_JSON_BYTES,
    MAX_IMAGE_BYTES,
    MAX_JSON_COMMAS,
    MAX_JSON_CONTAINERS,
)

DEEP = b"[" * 5000 + b"]" * 5000  # a few kB that ended the old readers in a RecursionError
COMMANDS = ("validate", "import", "export")


def deep_extensions(levels: int) -> dict[str, Any]:
    nested: Any = "bottom"
    for _ in range(levels):
        nested = {"x": nested}
    return v2_card("Deep", extensions={"tool": nested})


# Crashes and hangs ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["json", "png", "charx"])
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("payload", [DEEP, card_bytes(deep_extensions(300))],
                         ids=["bare-5000", "in-extensions-300"])
def test_deep_nesting_is_named_and_the_batch_goes_on(kind: str, command: str, payload: bytes,
                                                     tmp_path: Path) -> None:
    deep = as_file(kind, tmp_path, payload, "deep")
    good = write_json(tmp_path / "good.json", v2_card("Good"))
    result = run_command(command, [deep, good], tmp_path / "out")

    assert result.exit_code == 1
    assert says(result, "nested too deeply")
    done = {"validate": "ok", "import": "imported", "export": "wrote"}[command]
    assert says(result, f"{done} {good}" if command != "export" else "good.v2.json"), (
        result.output)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_huge_json_card_is_refused_before_it_is_read(command: str, tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:
        handle.truncate(4 * MAX_CARD_JSON_BYTES)  # sparse: costs no disk, no memory
    tracemalloc.start()
    started = time.monotonic()
    result = run_command(command, [huge], tmp_path / "out")
    seconds = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()

    assert result.exit_code == 1
    assert says(result, "32.0 MB, over the 8.0 MB limit")
    assert seconds < 2 and peak < MAX_CARD_JSON_BYTES // 4


def padded_card(size: int) -> bytes:
    """A valid card whose JSON is exactly size bytes (padded with spaces)."""
    raw = card_bytes(v2_card("Padded"))
    return raw + b" " * (size - len(raw))


@pytest.mark.parametrize(("kind", "message"), [
    ("json", "the card is 8.0 MB, over the 8.0 MB limit"),
    ("png", "the card JSON in the 'chara' chunk is 8.0 MB, over the 8.0 MB limit"),
    ("charx", "archive member 'card.json' is 8.0 MB, over the 8.0 MB limit"),
])
def test_card_json_over_the_limit_is_refused_in_every_container(kind: str, message: str,
                                                                tmp_path: Path) -> None:
    path = as_file(kind, tmp_path, padded_card(MAX_CARD_JSON_BYTES + 1))
    for command in COMMANDS:
        result = run_command(command, [path], tmp_path / "out")
        assert result.exit_code == 1 and says(result, message), result.output


@pytest.mark.parametrize("unit", [b"{},", b"[],", b"0,"], ids=["objects", "arrays", "numbers"])
def test_json_wide_enough_to_eat_gigabytes_is_refused_unparsed(unit: bytes,
                                                               tmp_path: Path) -> None:
    count = (MAX_CARD_JSON_BYTES - 2) // len(unit)
    path = tmp_path / "wide.json"
    path.write_bytes(b"[" + unit * (count - 1) + unit[:-1] + b"]")
    started = time.monotonic()
    result = run_command("validate", [path], tmp_path / "out")
    assert result.exit_code == 1
    assert says(result, f"more than {MAX_JSON_CONTAINERS:,} objects and arrays")
    assert time.monotonic() - started < 1


def at_the_limit(path: Path, unit: str, count: int) -> Path:
    """A valid card of exactly MAX_CARD_JSON_BYTES holding count copies of unit, the widest a
    card may be."""
    head, tail = card_bytes(v2_card("Wide")).split(b'"extensions": {}')
    body = b'"extensions": {"wide": [' + b",".join([unit.encode()] * count) + b"]}"
    raw = head + body + tail
    padding = MAX_CARD_JSON_BYTES - len(raw)
    path.write_bytes(raw.replace(b'"scenario": ""', b'"scenario": "' + b"x" * padding + b'"'))
    assert path.stat().st_size == MAX_CARD_JSON_BYTES
    return path


MEASURE = """
import resource, sys, time
from pathlib import Path
from persona_foundry.cards.exchange import export_card, load_card, save_imported
from persona_foundry.cards.validate import file_report
card, out = Path(sys.argv[1]), Path(sys.argv[2])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
assert file_report(card).problems == [], file_report(card).problems
save_imported(load_card(card), out)
export_card(load_card(card), ("v2", "v3", "png", "charx", "eliza"), out / "exports")
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
print(grown, time.monotonic() - started)
"""


@pytest.mark.parametrize(("unit", "count"), [
    ('"ab"', MAX_JSON_COMMAS - 50), ('{"k":"v"}', MAX_JSON_CONTAINERS - 50)],
    ids=["strings", "objects"])
def test_a_card_at_the_limit_costs_bounded_memory_and_time(unit: str, count: int,
                                                           tmp_path: Path) -> None:
    card = at_the_limit(tmp_path / "wide.json", unit, count)
    measured = subprocess.run([sys.executable, "-c", MEASURE, str(card), str(tmp_path / "out")],
                              capture_output=True, text=True, check=True, timeout=60)
    grown, seconds = map(float, measured.stdout.split())
    # The old readers took 5.4 GB and 87 s for 200 MB; at the 8 MB limit: a few hundred MB.
    assert grown < 320 * 2**20, grown
    assert seconds < 8, seconds


def test_a_huge_png_chunk_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    too_big = base64.b64encode(padded_card(MAX_CARD_JSON_BYTES * 5 // 4))  # 10 MB of JSON
    chunks = png_chunks(picture())
    chunks.insert(1, (b"tEXt", b"chara\x00" + too_big))
    path = tmp_path / "fat.png"
    path.write_bytes(build_png(chunks))
    result = run_command("validate", [path], tmp_path / "out")
    assert result.exit_code == 1
    assert says(result, "the 'chara' chunk is 13.3 MB, over the 10.7 MB limit"), result.output


def test_a_png_card_file_over_the_limit_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(MAX_IMAGE_BYTES + 1)
    for command in COMMANDS:
        result = run_command(command, [path], tmp_path / "out")
        assert result.exit_code == 1 and says(result, "the PNG card is 64.0 MB, over the")


def stream_member(archive: zipfile.ZipFile, name: str, size: int) -> None:
    """A member of size zero bytes, compressed while written (never all in memory)."""
    with archive.open(name, "w", force_zip64=True) as member:
        block = bytes(2**20)
        for _ in range(size // len(block)):
            member.write(block)
        member.write(bytes(size % len(block)))


def test_a_zip_bomb_icon_is_refused_while_small(tmp_path: Path) -> None:
    path = tmp_path / "bomb.charx"
    card = v3_card("Bomb", assets=[{"type": "icon", "uri": "embeded://assets/icon/images/"
                                    "main.png", "name": "main", "ext": "png"}])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", card_bytes(card))
        stream_member(archive, "assets/icon/images/main.png", MAX_IMAGE_BYTES + 1)
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    result = run_command("import", [path], tmp_path / "out")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result.exit_code == 1 and says(result, "'assets/icon/images/main.png' is 64.0 MB")
    assert peak < 8 * 2**20


def test_a_zip_with_a_huge_member_list_is_refused_before_it_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "many.charx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("card.json", card_bytes(v3_card("Many")))
        for number in range(300):
            archive.writestr(f"{number:04d}" + "x" * 4000, b"")
    result = run_command("validate", [path], tmp_path / "out")
    assert result.exit_code == 1
    assert says(result, "the zip's member list is 1.2 MB, over the 1.0 MB limit")


def charx_with_icon(icon: bytes) -> bytes:
    buffer = io.BytesIO()
    card = card_bytes(v3_card("Iconic"))
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("card.json", card)
        archive.writestr("assets/icon/images/main.png", icon)
    return buffer.getvalue()


def png_with_broken_pixels() -> bytes:
    chunks = [(kind, body if kind != b"IDAT" else body[:4] + b"\xff" * 20)
              for kind, body in png_chunks(picture(size=(64, 64)))]
    chunks.insert(1, (b"tEXt", b"chara\x00" + base64.b64encode(card_bytes(v2_card("Broken")))))
    return build_png(chunks)


def unsupported_compression(raw: bytes) -> bytes:
    """The archive with its first member's compression method set to 99 (AES)."""
    data = bytearray(raw)
    data[8:10] = (99).to_bytes(2, "little")
    central = data.find(b"PK\x01\x02")
    data[central + 10:central + 12] = (99).to_bytes(2, "little")
    return bytes(data)


def write_bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name
    return write


def write_card(name: str, card: Any) -> Callable[[Path], Path]:
    return lambda folder: write_json(folder / name, card)


def bomb_png_card(folder: Path) -> Path:
    pixels = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(pixels, format="PNG")  # 100 MP, a small file
    return write_png_card(folder / "bomb.png", card_bytes(v2_card("Bomb")),
                          image=pixels.getvalue())


HOSTILE: dict[str, Callable[[Path], Path]] = {
    "data-is-a-list": write_card("a.json", {**v2_card(), "data": [1, 2]}),
    "entries-is-a-number": write_card("b.json", v2_card(character_book={"entries": 5})),
    "our-extension-is-a-string": write_card("c.json", v2_card(
        extensions={"persona_foundry": "not an object"})),
    "our-stages-are-junk": write_card("d.json", v2_card(extensions={"persona_foundry": {
        "core": ["x"], "strategy": {"pillars": ["p", 1, {"name": 2}], "tone": 5},
        "example_tweets": {"tweets": [1, {"text": None}]}, "authenticity": "x",
        "generated_at": 12, "source_image": ["/etc/passwd"]}})),
    "integer-of-5000-digits": write_bytes("e.json", b'{"name": 1' + b"0" * 5000 + b"}"),
    "lone-surrogate": write_bytes("f.json", card_bytes(v2_card("X")).replace(
        b'"name": "X"', b'"name": "\\ud800"')),
    "not-utf8": write_bytes("g.json", b'{"name": "\xff\xfe"}'),
    "charx-data-is-a-string": lambda folder: write_charx(
        folder / "h.charx", b'{"spec": "chara_card_v3", "data": "x"}'),
    "charx-assets-is-a-number": lambda folder: write_charx(
        folder / "i.charx", card_bytes(v3_card(assets=7))),
    "charx-icon-is-not-an-image": write_bytes("j.charx", charx_with_icon(b"not a picture")),
    "charx-unsupported-compression": write_bytes("k.charx", unsupported_compression(
        charx_with_icon(picture()))),
    "png-broken-pixels": write_bytes("l.png", png_with_broken_pixels()),
    "png-decompression-bomb": bomb_png_card,
    "truncated-zip": write_bytes("m.charx", charx_with_icon(picture())[:-30]),
    "empty": write_bytes("n.json", b""),
}


@pytest.mark.parametrize("make", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("command", COMMANDS)
def test_hostile_files_get_a_line_never_a_traceback(make: Callable[[Path], Path], command: str,
                                                    tmp_path: Path) -> None:
    hostile = make(tmp_path)
    good = write_json(tmp_path / "good.json", v2_card("Good"))
    result = run_command(command, [hostile, good], tmp_path / "out")  # run_cli: no crash
    assert result.exit_code in (0, 1)
    assert says(result, "good.v2.json" if command == "export" else str(good))
