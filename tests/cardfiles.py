"""Card files for tests, built the way other tools (or attackers) build them: JSON, PNG, CHARX."""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from click.testing import Result
from PIL import Image
from typer.testing import CliRunner

from persona_foundry.cli import app

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def v2_card(name: str = "Ana", **data: Any) -> dict[str, Any]:
    """A minimal valid V2 card; data overrides replace or add `data` keys."""
    fields: dict[str, Any] = {
        "name": name, "description": f"{name} from elsewhere.", "personality": "curious",
        "scenario": "", "first_mes": f"Hi, I'm {name}.", "mes_example": "",
        "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
        "alternate_greetings": [], "tags": [], "creator": "someone", "character_version": "1",
        "extensions": {},
    }
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": {**fields, **data}}


def v3_card(name: str = "Ana", **data: Any) -> dict[str, Any]:
    """A minimal valid V3 card."""
    card = v2_card(name, group_only_greetings=[], **data)
    return {**card, "spec": "chara_card_v3", "spec_version": "3.0"}


def card_bytes(card: Any) -> bytes:
    """card as UTF-8 JSON bytes."""
    return json.dumps(card, ensure_ascii=False).encode("utf-8")


def write_json(path: Path, card: Any) -> Path:
    """card as a UTF-8 JSON file."""
    path.write_text(json.dumps(card, ensure_ascii=False), encoding="utf-8")
    return path


def picture(color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (32, 32),
            mode: str = "RGB") -> bytes:
    """A small PNG picture of one colour."""
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else 0).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png_card(path: Path, card_json: bytes, *, image: bytes | None = None) -> Path:
    """A PNG card: the picture with card_json, base64-encoded, in a `chara` tEXt chunk after
    IHDR (the picture itself is never decoded: it may be a decompression bomb)."""
    chunks = png_chunks(image or picture())
    chunks.insert(1, (b"tEXt", b"chara\x00" + base64.b64encode(card_json)))
    path.write_bytes(build_png(chunks))
    return path


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk of a PNG file."""
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunks.append((kind, data[offset + 8:offset + 8 + length]))
        offset += 12 + length
    return chunks


def build_png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG file of these chunks, each with a correct CRC."""
    out = [PNG_SIGNATURE]
    for kind, body in chunks:
        out += [struct.pack(">I", len(body)), kind, body,
                struct.pack(">I", zlib.crc32(kind + body))]
    return b"".join(out)


def write_charx(path: Path, card_json: bytes, members: dict[str, bytes] | None = None) -> Path:
    """A CHARX archive: card.json and any other members, deflated."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("card.json", card_json)
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return path


def run_cli(*args: object) -> Result:
    """The CLI as a user runs it; fails the test on any uncaught exception (a traceback)."""
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"crashed: {result.exception!r}\n{result.output}") from (
            result.exception)
    assert "Traceback" not in result.output, result.output
    return result


def flat(text: str) -> str:
    """text without whitespace: rich wraps long lines at the terminal width."""
    return "".join(text.split())


def says(result: Result, *phrases: str) -> bool:
    """Whether the command's output holds every phrase (whitespace ignored)."""
    output = flat(result.output)
    return all(flat(phrase) in output for phrase in phrases)


def as_file(kind: str, folder: Path, raw: bytes, stem: str = "card") -> Path:
    """raw card JSON as a .json card, a PNG card's `chara` chunk or a CHARX card.json."""
    if kind == "json":
        path = folder / f"{stem}.json"
        path.write_bytes(raw)
        return path
    if kind == "png":
        return write_png_card(folder / f"{stem}.png", raw)
    return write_charx(folder / f"{stem}.charx", raw)


def run_command(command: str, files: list[Path], out: Path) -> Result:
    """validate, import or export (every format) of files, into out."""
    extra: list[object] = [] if command == "validate" else ["--out", out]
    formats = ["-f", "all"] if command == "export" else []
    return run_cli(command, *files, *extra, *formats)
