"""CHARX cards: a zip with the V3 `card.json` at its root and the icon under `assets/`.

Reading opens the archive in place and takes two members, each bounded before and while it is
decompressed (a zip bomb stops at the limit); the zip's directory is bounded before zipfile
loads it (a million tiny members would otherwise become a million objects).
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import pretty_json
from .limits import MAX_CARD_JSON_BYTES, MAX_IMAGE_BYTES, MIB, parse_card_json, too_large

CARD_NAME = "card.json"
ICON_PATH = "assets/icon/images/main.png"
ICON_URI = f"embeded://{ICON_PATH}"  # the spec's spelling
# The prefixes SillyTavern's CHARX reader accepts (RisuAI writes the misspelt one).
EMBEDDED_URI_PREFIXES = ("embeded://", "embedded://", "__asset:")
# About 10,000 members with ordinary names; a card with its emotion images needs a few hundred.
MAX_DIRECTORY_BYTES = 1 * MIB
_END_OF_DIRECTORY = b"PK\x05\x06"
_END_RECORD_BYTES = 22
_MAX_ZIP_COMMENT_BYTES = 65_535
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
              EOFError, OSError, ValueError, zlib.error)


@dataclass(frozen=True)
class CharxContents:
    """What a CHARX archive holds that cards need: the card, its icon, every member's name."""

    card: dict[str, Any]
    icon: bytes | None
    member_names: list[str]


def write_charx(v3: dict[str, Any], icon_png: bytes) -> bytes:
    """The CHARX archive bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(CARD_NAME, pretty_json(v3))
        archive.writestr(ICON_PATH, icon_png)
    return buffer.getvalue()


def read_charx(path: Path) -> CharxContents:
    """The card, its main icon (if embedded) and the member names of a CHARX archive."""
    directory = _directory_bytes(path)
    if directory > MAX_DIRECTORY_BYTES:
        raise InputError(path, too_large("the zip's member list", directory, MAX_DIRECTORY_BYTES))
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if CARD_NAME not in members:
                raise InputError(path, f"no {CARD_NAME} at the root of the archive")
            raw = _read_member(archive, members[CARD_NAME], MAX_CARD_JSON_BYTES, path)
            card = parse_card_json(raw, name=path, what=CARD_NAME)
            if not isinstance(card, dict):
                raise InputError(path, f"{CARD_NAME} is not a JSON object")
            icon_info = members.get(icon_member(card))
            icon = _read_member(archive, icon_info, MAX_IMAGE_BYTES, path) if icon_info else None
    except ZIP_ERRORS as exc:
        raise InputError(path, f"not a readable CHARX archive: {exc}") from exc
    return CharxContents(card, icon, list(members))


def _directory_bytes(path: Path) -> int:
    """The size the zip's end record gives its central directory (0 if there is none)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, io.SEEK_END)
            tail_size = min(size, _END_RECORD_BYTES + _MAX_ZIP_COMMENT_BYTES)
            handle.seek(size - tail_size)
            tail = handle.read(tail_size)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    at = tail.rfind(_END_OF_DIRECTORY)
    if at < 0 or len(tail) - at < _END_RECORD_BYTES:
        return 0  # not a zip after all: zipfile says so below
    (directory_size,) = struct.unpack_from("<I", tail, at + 12)
    return int(directory_size)


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int,
                 path: Path) -> bytes:
    what = f"archive member {info.filename!r}"
    if info.file_size > limit:
        raise InputError(path, too_large(what, info.file_size, limit))
    with archive.open(info) as member:
        data = member.read(limit + 1)  # stops at the limit whatever the header claimed
    if len(data) > limit:
        raise InputError(path, too_large(what, len(data), limit))
    return data


def embedded_member(uri: str) -> str | None:
    """The member an `embeded://` asset URI names, normalised; None if it is not one or it
    points outside the archive (`embeded://../x`, an absolute path)."""
    for prefix in EMBEDDED_URI_PREFIXES:
        if uri.lower().startswith(prefix):
            raw = uri[len(prefix):].replace("\\", "/").strip()
            member = posixpath.normpath(raw) if raw else ""
            escapes = member.startswith(("/", "..")) or member in ("", ".")
            return None if escapes else member
    return None


def icon_uris(card: dict[str, Any]) -> list[str]:
    """The URIs of the card's icon assets, the one named `main` first."""
    data = card.get("data")
    assets = data.get("assets") if isinstance(data, dict) else None
    if not isinstance(assets, list):
        return []
    icons = [asset for asset in assets if isinstance(asset, dict)
             and asset.get("type") == "icon" and isinstance(asset.get("uri"), str)]
    icons.sort(key=lambda asset: asset.get("name") != "main")
    return [asset["uri"] for asset in icons]


def icon_member(card: dict[str, Any]) -> str:
    """The archive path of the card's main icon (the spec's default path if none is named)."""
    members = (embedded_member(uri) for uri in icon_uris(card))
    return next((member for member in members if member), ICON_PATH)
