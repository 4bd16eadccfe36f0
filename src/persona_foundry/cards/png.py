"""PNG character cards: `chara` (V2) and `ccv3` (V3) tEXt chunks, base64 of UTF-8 JSON.

`chara` is written as the first text chunk and every other text chunk is dropped, so readers
that take the first tEXt chunk (older SillyTavern, many scripts) still find the V2 card.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from ..errors import InputError
from .limits import MAX_CARD_CHUNK_BYTES, parse_card_json, too_large

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNK_V2 = "chara"
CHUNK_V3 = "ccv3"
TEXT_CHUNK_TYPES = (b"tEXt", b"zTXt", b"iTXt")
# Encoders split the pixels into 8–64 kB IDAT chunks: a 64 MB card file has a few thousand.
MAX_PNG_CHUNKS = 100_000


@dataclass(frozen=True, slots=True)
class PngChunk:
    """One chunk of a PNG file, in file order."""

    kind: bytes
    data: bytes
    crc_ok: bool


def encode_card(card: dict[str, Any]) -> str:
    """base64 of the card's UTF-8 JSON (non-ASCII kept as characters, not escapes)."""
    text = json.dumps(card, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_card(value: bytes, *, name: str | Path, keyword: str = CHUNK_V2) -> dict[str, Any]:
    """The card in a chunk value; InputError if too large or not base64 JSON of an object."""
    what = f"the {keyword!r} chunk"
    if len(value) > MAX_CARD_CHUNK_BYTES:
        raise InputError(name, too_large(what, len(value), MAX_CARD_CHUNK_BYTES))
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise InputError(name, f"{what} is not base64-encoded card JSON: {exc}") from exc
    card = parse_card_json(raw, name=name, what=f"the card JSON in {what}")
    if not isinstance(card, dict):
        raise InputError(name, f"{what} holds JSON that is not an object")
    return card


def write_png_card(image: Image.Image, v2: dict[str, Any], v3: dict[str, Any]) -> bytes:
    """The image as PNG with exactly two text chunks: `chara` first, then `ccv3`."""
    info = PngImagePlugin.PngInfo()
    info.add_text(CHUNK_V2, encode_card(v2))
    info.add_text(CHUNK_V3, encode_card(v3))
    buffer = io.BytesIO()
    image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").save(
        buffer, format="PNG", pnginfo=info
    )
    return buffer.getvalue()


def read_chunks(data: bytes, *, name: str = "PNG") -> list[PngChunk]:
    """Every chunk in file order; raise InputError on a file that is not a whole PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise InputError(name, "not a PNG file (bad signature)")
    chunks: list[PngChunk] = []
    offset = len(PNG_SIGNATURE)
    while offset < len(data):
        if len(chunks) == MAX_PNG_CHUNKS:
            raise InputError(name, f"more than {MAX_PNG_CHUNKS:,} PNG chunks: not a card picture")
        if offset + 8 > len(data):
            raise InputError(name, "truncated PNG (cut inside a chunk header)")
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        end = offset + 8 + length + 4
        if end > len(data):
            raise InputError(name, f"truncated PNG (chunk {kind!r} runs past the end)")
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        chunks.append(PngChunk(kind, body, zlib.crc32(kind + body) == crc))
        offset = end
        if kind == b"IEND":
            break
    return chunks


def text_chunks(chunks: list[PngChunk]) -> list[tuple[str, bytes]]:
    """(keyword, value) of the tEXt chunks, in order (zTXt/iTXt are not used by cards)."""
    found = []
    for chunk in chunks:
        if chunk.kind == b"tEXt" and b"\x00" in chunk.data:
            keyword, _, value = chunk.data.partition(b"\x00")
            found.append((keyword.decode("latin-1"), value))
    return found


def read_png_card(data: bytes, *, name: str = "PNG") -> dict[str, Any]:
    """The card a PNG carries: `ccv3` when present (the V3 spec says to prefer it), else `chara`."""
    texts = dict(text_chunks(read_chunks(data, name=name)))
    for keyword in (CHUNK_V3, CHUNK_V2):
        if keyword in texts:
            return decode_card(texts[keyword], name=name, keyword=keyword)
    raise InputError(name, "no 'chara' or 'ccv3' tEXt chunk: not a character card")
