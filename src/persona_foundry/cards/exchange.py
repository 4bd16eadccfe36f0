"""Cards in and out: read any V1/V2/V3 JSON, PNG or CHARX card; write every export format."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw
from pydantic import ValidationError

from ..errors import InputError
from ..files import atomic_write_bytes, atomic_write_json, persona_key, safe_slug, unique_path
from ..source_image import load_source_image
from .charx import ICON_URI, read_charx, write_charx
from .eliza import to_eliza
from .merge import PF_EXTENSION
from .png import PNG_SIGNATURE, read_png_card, write_png_card
from .v2 import CardDataV2, CharacterCardV2
from .v3 import to_v3

ExportFormat = Literal["v2", "v3", "png", "charx", "eliza"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("v2", "v3", "png", "charx", "eliza")
EXPORT_SUFFIXES: dict[ExportFormat, str] = {
    "v2": ".v2.json", "v3": ".v3.json", "png": ".png", "charx": ".charx", "eliza": ".eliza.json",
}
PLACEHOLDER_SIZE = (512, 512)
V2_DEFAULTS: dict[str, Any] = {
    "description": "", "personality": "", "scenario": "", "first_mes": "", "mes_example": "",
    "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
    "alternate_greetings": [], "tags": [], "creator": "", "character_version": "",
    "extensions": {},
}
ENTRY_DEFAULTS: dict[str, Any] = {"extensions": {}, "enabled": True, "content": "", "keys": []}


@dataclass(frozen=True)
class LoadedCard:
    """A card read from any format, as our V2 model, with its image when it carries one."""

    card: CharacterCardV2
    image_png: bytes | None
    source: Path
    format: str


def _normalized_book(book: Any) -> dict[str, Any]:
    """A lorebook importers accept: entries with defaults and unique integer ids."""
    book = dict(book) if isinstance(book, dict) else {}
    book.setdefault("extensions", {})
    entries = []
    for number, entry in enumerate(book.get("entries") or [], start=1):
        if not isinstance(entry, dict):
            continue
        fixed = {**ENTRY_DEFAULTS, **entry, "id": number}
        fixed.setdefault("insertion_order", number)
        fixed.pop("use_regex", None)
        for key in ("name", "comment"):
            if fixed.get(key) is None:
                fixed.pop(key, None)
        entries.append(fixed)
    book["entries"] = entries
    return {key: value for key, value in book.items() if value is not None}


def normalize_card(raw: dict[str, Any], *, name: str) -> CharacterCardV2:
    """Any V1/V2/V3 card object as our V2 model; missing optional fields get their defaults."""
    spec = raw.get("spec")
    if spec not in (None, "chara_card_v2", "chara_card_v3"):
        raise InputError(name, f"unknown card spec {spec!r}")
    # V3 is a superset of V2: its extra fields (assets, dates, group greetings) are dropped.
    data = dict(raw.get("data") or {}) if spec else dict(raw)
    data["character_book"] = _normalized_book(data.get("character_book"))
    fields = set(CardDataV2.model_fields)
    try:
        return CharacterCardV2(data=CardDataV2.model_validate(
            {key: value for key, value in _with_defaults(data).items() if key in fields}
        ))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        raise InputError(name, f"not a usable card: {where}: {error['msg']}") from exc


def _with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    merged = {**V2_DEFAULTS, **{k: v for k, v in data.items() if v is not None}}
    for key in ("alternate_greetings", "tags"):
        if not isinstance(merged[key], list):
            merged[key] = [str(merged[key])] if merged[key] else []
    return merged


def load_card(path: Path) -> LoadedCard:
    """Read a card file of any supported format."""
    if not path.is_file():
        raise InputError(path, "file not found" if not path.exists() else "not a file")
    raw = path.read_bytes()
    if raw.startswith(PNG_SIGNATURE):
        return LoadedCard(normalize_card(read_png_card(raw, name=str(path)), name=str(path)),
                          raw, path, "png")
    if zipfile.is_zipfile(path):
        card, icon = read_charx(raw, name=str(path))
        return LoadedCard(normalize_card(card, name=str(path)), icon, path, "charx")
    try:
        card = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a JSON, PNG or CHARX card: {exc}") from exc
    if not isinstance(card, dict):
        raise InputError(path, "the JSON is not a card object")
    spec = card.get("spec", "chara_card_v1")
    return LoadedCard(normalize_card(card, name=str(path)), None, path, str(spec))


def generated_posts(card_path: Path) -> list[str]:
    """Posts the `tweets` command wrote for this card (`../tweets/{persona}_*.json`)."""
    folder = card_path.parent.parent / "tweets"
    posts = []
    for path in sorted(folder.glob(f"{persona_key(card_path)}_*.json")):
        try:
            posts += [str(t["text"]) for t in json.loads(path.read_text("utf-8"))["tweets"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an empty or foreign file adds nothing
    return posts


def _placeholder_portrait(name: str) -> Image.Image:
    """A plain portrait with the persona's initials, for cards whose source image is gone."""
    image = Image.new("RGB", PLACEHOLDER_SIZE, (70, 80, 110))
    initials = "".join(part[0] for part in name.split()[:2]).upper() or "?"
    ImageDraw.Draw(image).text((200, 230), initials, fill=(240, 240, 240), font_size=96)
    return image


def card_image(loaded: LoadedCard, override: Path | None) -> Image.Image:
    """The picture to embed: the given file, the card's own image, its source image, or initials."""
    if override is not None:
        return load_source_image(override).image
    if loaded.image_png is not None:
        return Image.open(io.BytesIO(loaded.image_png)).convert("RGB")
    ours = loaded.card.data.extensions.get(PF_EXTENSION) or {}
    source_path = (ours.get("source_image") or {}).get("path")
    if source_path and Path(source_path).is_file():
        return load_source_image(Path(source_path)).image
    return _placeholder_portrait(loaded.card.data.name)


def _timestamps(card: CharacterCardV2) -> tuple[int, int]:
    ours = card.data.extensions.get(PF_EXTENSION) or {}
    now = int(datetime.now(UTC).timestamp())
    try:
        created = int(datetime.fromisoformat(ours["generated_at"]).timestamp())
    except (KeyError, TypeError, ValueError):
        created = now
    return created, now


def export_card(loaded: LoadedCard, formats: tuple[ExportFormat, ...], out_dir: Path,
                image: Path | None = None) -> list[Path]:
    """Write the card in each format under out_dir; return the files written."""
    card = loaded.card
    stem = safe_slug(card.data.name)
    created, modified = _timestamps(card)
    portrait = io.BytesIO()
    card_image(loaded, image).save(portrait, format="PNG")
    v2 = card.model_dump(mode="json")
    written = []
    for fmt in formats:
        target = out_dir / f"{stem}{EXPORT_SUFFIXES[fmt]}"
        if fmt == "v2":
            atomic_write_json(target, v2)
        elif fmt == "eliza":
            character = to_eliza(card, generated_posts(loaded.source))
            atomic_write_json(target, character.model_dump(mode="json", exclude_none=True))
        else:
            uri = {"png": "ccdefault:", "charx": ICON_URI, "v3": "ccdefault:"}[fmt]
            v3 = to_v3(card, icon_uri=uri, created=created, modified=modified).model_dump(
                mode="json")
            if fmt == "v3":
                atomic_write_json(target, v3)
            elif fmt == "png":
                image_file = Image.open(io.BytesIO(portrait.getvalue()))
                atomic_write_bytes(target, write_png_card(image_file, v2, v3))
            else:
                atomic_write_bytes(target, write_charx(v3, portrait.getvalue()))
        written.append(target)
    return written


def save_imported(loaded: LoadedCard, out_dir: Path) -> Path:
    """Store a foreign card as one of ours (`personas/{name}_persona.json`, image beside it).

    The tweet, calendar and image commands then work on it; `persona --complete` can add the
    stages it lacks.
    """
    folder = out_dir / "personas"
    stem = safe_slug(loaded.card.data.name)
    card_path = unique_path(folder / f"{stem}_persona.json")
    extensions = dict(loaded.card.data.extensions)
    ours = dict(extensions.get(PF_EXTENSION) or {})
    ours["imported_from"] = {"file": loaded.source.name, "format": loaded.format}
    if loaded.image_png is not None:
        image_path = card_path.with_name(card_path.name.removesuffix(".json") + ".png")
        atomic_write_bytes(image_path, loaded.image_png)
        ours["source_image"] = {
            "name": image_path.name, "path": str(image_path.resolve()),
            "sha256": hashlib.sha256(loaded.image_png).hexdigest(),
        }
    extensions[PF_EXTENSION] = ours
    card = loaded.card.model_copy(
        update={"data": loaded.card.data.model_copy(update={"extensions": extensions})}
    )
    atomic_write_json(card_path, card.model_dump(mode="json"))
    return card_path
