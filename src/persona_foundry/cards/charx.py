"""CHARX cards: a zip with the V3 `card.json` at its root and the icon under `assets/`."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from ..errors import InputError

CARD_NAME = "card.json"
ICON_PATH = "assets/icon/images/main.png"
ICON_URI = f"embeded://{ICON_PATH}"  # the spec's spelling
MAX_MEMBER_BYTES = 200_000_000


def write_charx(v3: dict[str, Any], icon_png: bytes) -> bytes:
    """The CHARX archive bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(CARD_NAME, json.dumps(v3, ensure_ascii=False, indent=2))
        archive.writestr(ICON_PATH, icon_png)
    return buffer.getvalue()


def read_charx(data: bytes, *, name: str = "CHARX") -> tuple[dict[str, Any], bytes | None]:
    """The card and its main icon (if embedded) from a CHARX archive."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if CARD_NAME not in members:
                raise InputError(name, f"no {CARD_NAME} at the root of the archive")
            if any(info.file_size > MAX_MEMBER_BYTES for info in members.values()):
                raise InputError(name, "an archive member is too large")
            card = json.loads(archive.read(CARD_NAME).decode("utf-8"))
            icon_path = _icon_path(card)
            icon = archive.read(icon_path) if icon_path in members else None
    except (zipfile.BadZipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(name, f"not a readable CHARX archive: {exc}") from exc
    if not isinstance(card, dict):
        raise InputError(name, f"{CARD_NAME} is not a JSON object")
    return card, icon


def _icon_path(card: dict[str, Any]) -> str:
    assets = (card.get("data") or {}).get("assets") or []
    for asset in assets:
        if isinstance(asset, dict) and asset.get("type") == "icon":
            uri = str(asset.get("uri", ""))
            if uri.startswith("embeded://"):
                return uri.removeprefix("embeded://")
    return ICON_PATH
