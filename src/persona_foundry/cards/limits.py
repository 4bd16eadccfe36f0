"""How much of a card file is read and parsed: every limit checked before the bytes are parsed.

Cards in the wild are a few kB to a few hundred kB of JSON (a large lorebook reaches 1–2 MB);
the limits sit far above that and far below what costs real memory or time. A card's JSON is
parsed by orjson: it never recurses past its own depth limit, and it refuses what we could not
write back as UTF-8 JSON (NaN, lone surrogates, numbers beyond a double), which the standard
library let through to crash a later step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError

MIB = 1024 * 1024
# A card's JSON: a .json card, the decoded `chara`/`ccv3` chunk of a PNG, a CHARX `card.json`.
MAX_CARD_JSON_BYTES = 8 * MIB
# Counted on the raw text before parsing (brackets and commas inside strings count too), so that
# 8 MB of `[{},{},…]` cannot turn into gigabytes of Python objects.
MAX_JSON_CONTAINERS = 100_000
MAX_JSON_COMMAS = 500_000
# Real cards nest about 8 levels deep (data.character_book.entries[].extensions.…).
MAX_JSON_DEPTH = 64
# A PNG card file (the picture plus its chunks) and a CHARX icon member.
MAX_IMAGE_BYTES = 64 * MIB
# A PNG tEXt chunk holds base64, 4 bytes per 3 of JSON.
MAX_CARD_CHUNK_BYTES = (MAX_CARD_JSON_BYTES + 2) // 3 * 4


def megabytes(size: int) -> str:
    """A byte count as `12.3 MB` (MiB, as file managers show them)."""
    return f"{size / MIB:.1f} MB"


def too_large(what: str, size: int, limit: int) -> str:
    """The reason text for an input over its limit."""
    return (f"{what} is {megabytes(size)}, over the {megabytes(limit)} limit for a card "
            "(see the README's 'Card formats')")


def read_bounded(path: Path, limit: int, *, what: str = "the file") -> bytes:
    """The file's bytes, or InputError if it is larger than limit (never reading more)."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise InputError(path, too_large(what, size, limit))
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # the size may have changed since stat
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise InputError(path, too_large(what, len(data), limit))
    return data


def parse_card_json(raw: bytes, *, name: str | Path, what: str = "the card") -> Any:
    """The JSON value in raw, after checking its size, value count and depth; else InputError."""
    if len(raw) > MAX_CARD_JSON_BYTES:
        raise InputError(name, too_large(what, len(raw), MAX_CARD_JSON_BYTES))
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > MAX_JSON_CONTAINERS or raw.count(b",") > MAX_JSON_COMMAS:
        raise InputError(name, f"{what} holds more than {MAX_JSON_CONTAINERS:,} objects and "
                         f"arrays or {MAX_JSON_COMMAS:,} values: far more than any card")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise InputError(name, _too_deep(what)) from exc
        if "UTF-8" in str(exc):  # orjson's words for bytes that are not UTF-8 text
            raise InputError(name, f"{what} is not UTF-8 text, so not JSON") from exc
        raise InputError(name, f"{what} is not valid JSON: {exc}") from exc
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise InputError(name, _too_deep(what))
    return value


def _too_deep(what: str) -> str:
    return f"{what} is nested too deeply (more than {MAX_JSON_DEPTH} levels of arrays/objects)"


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether value nests more than limit arrays/objects deep (iterative: no recursion)."""
    level: list[Any] = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [child for node in level for child in _children(node)
                 if isinstance(child, dict | list)]
        if not level:
            return False
    return bool(level)


def _children(node: Any) -> Any:
    if isinstance(node, dict):
        return node.values()
    return node if isinstance(node, list) else ()
