"""Cards in and out: read any V1/V2/V3 JSON, PNG or CHARX card; write every export format.

Whatever a card file holds, reading it ends in a LoadedCard or an InputError that names the
file and the reason (limits.py bounds sizes and nesting before anything is parsed). Writing
never replaces a file silently and never opens a path the card names (portrait.py).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import InputError, OutputError
from ..files import atomic_write_bytes, persona_key, pretty_json, safe_slug, unique_path
from ..store import PF_EXTENSION, OutputLayout, extension_of, read_tweet_files
from ..store.card_file import SourceImageRef
from .charx import ICON_URI, read_charx, write_charx
from .eliza import DEFAULT_ELIZA_PLUGINS, to_eliza
from .limits import MAX_CARD_JSON_BYTES, MAX_IMAGE_BYTES, parse_card_json, read_bounded
from .naming import claim_stem, export_stem
from .png import PNG_SIGNATURE, read_png_card, write_png_card
from .portrait import Portrait, choose_portrait
from .v2 import CardDataV2, CharacterCardV2
from .v3 import to_v3

# An export format's name, as `--format` takes it: a key of EXPORTERS.
ExportFormat = str
CardFileKind = Literal["png", "charx", "json"]
V2_DEFAULTS: dict[str, Any] = {
    "description": "", "personality": "", "scenario": "", "first_mes": "", "mes_example": "",
    "creator_notes": "", "system_prompt": "", "post_history_instructions": "",
    "alternate_greetings": [], "tags": [], "creator": "", "character_version": "",
    "extensions": {},
}
ZIP_SIGNATURE = b"PK\x03\x04"
ENTRY_DEFAULTS: dict[str, Any] = {"extensions": {}, "enabled": True, "content": "", "keys": []}


@dataclass(frozen=True)
class LoadedCard:
    """A card read from any format, as our V2 model, with its image when it carries one."""

    card: CharacterCardV2
    image_png: bytes | None
    source: Path
    format: str


@dataclass(frozen=True)
class ExportOptions:
    """What `export` writes: which formats, where, with which picture and ElizaOS plugins."""

    formats: tuple[ExportFormat, ...]
    out_dir: Path
    image: Path | None = None
    overwrite: bool = False
    eliza_plugins: tuple[str, ...] = DEFAULT_ELIZA_PLUGINS


@dataclass
class ExportResult:
    """The files one card's export wrote, and what the user should know about them."""

    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _normalized_book(book: Any) -> dict[str, Any]:
    """A lorebook importers accept: entries with defaults and unique integer ids."""
    book = dict(book) if isinstance(book, dict) else {}
    book.setdefault("extensions", {})
    raw_entries = book.get("entries")
    entries = []
    for number, entry in enumerate(raw_entries if isinstance(raw_entries, list) else [], 1):
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
    data = (raw.get("data") or {}) if spec else raw
    if not isinstance(data, dict):
        raise InputError(name, "not a usable card: data is not an object")
    data = {**data, "character_book": _normalized_book(data.get("character_book"))}
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


def card_file_kind(path: Path) -> CardFileKind:
    """Which reader a card file needs, from its first bytes; InputError if it is not a file."""
    if not path.is_file():
        raise InputError(path, "file not found" if not path.exists() else "not a file")
    try:
        with path.open("rb") as handle:
            head = handle.read(len(PNG_SIGNATURE))
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from exc
    if head == PNG_SIGNATURE:
        return "png"
    # A zip cut short has no end record (is_zipfile says no) but still starts like one.
    return "charx" if head.startswith(ZIP_SIGNATURE) or zipfile.is_zipfile(path) else "json"


def _load_png(path: Path) -> LoadedCard:
    raw = read_bounded(path, MAX_IMAGE_BYTES, what="the PNG card")
    return LoadedCard(normalize_card(read_png_card(raw, name=str(path)), name=str(path)), raw,
                      path, "png")


def _load_charx(path: Path) -> LoadedCard:
    contents = read_charx(path)
    return LoadedCard(normalize_card(contents.card, name=str(path)), contents.icon, path,
                      "charx")


def _load_json(path: Path) -> LoadedCard:
    card = parse_card_json(read_bounded(path, MAX_CARD_JSON_BYTES, what="the card"), name=path)
    if not isinstance(card, dict):
        raise InputError(path, "the JSON is not a card object")
    spec = card.get("spec") or "chara_card_v1"
    return LoadedCard(normalize_card(card, name=str(path)), None, path, str(spec))


# One reader per kind of card file (card_file_kind tells which).
READERS: dict[CardFileKind, Callable[[Path], LoadedCard]] = {
    "png": _load_png, "charx": _load_charx, "json": _load_json,
}


def load_card(path: Path) -> LoadedCard:
    """Read a card file of any supported format."""
    return READERS[card_file_kind(path)](path)


def generated_posts(card_path: Path) -> list[str]:
    """Posts the `tweets` command wrote for this card (its output folder's tweet files)."""
    layout = OutputLayout.of_file(card_path)
    found, _problems = read_tweet_files(layout.tweet_paths(persona_key(card_path)))
    return [record.text for _path, tweet_file in found for record in tweet_file.tweets]


def _timestamps(card: CharacterCardV2) -> tuple[int, int]:
    ours = extension_of(card.data.extensions)
    now = int(datetime.now(UTC).timestamp())
    try:
        created = int(datetime.fromisoformat(ours.generated_at).timestamp()) if ours else now
    except (ValueError, OverflowError, OSError):
        created = now
    return created, now


@dataclass
class _Rendering:
    """One card on its way to every format; each part is made once, when a format needs it."""

    loaded: LoadedCard
    options: ExportOptions

    @cached_property
    def v2(self) -> dict[str, Any]:
        return self.loaded.card.model_dump(mode="json")

    @cached_property
    def timestamps(self) -> tuple[int, int]:
        return _timestamps(self.loaded.card)

    def v3(self, icon_uri: str) -> dict[str, Any]:
        created, modified = self.timestamps
        return to_v3(self.loaded.card, icon_uri=icon_uri, created=created,
                     modified=modified).model_dump(mode="json")

    @cached_property
    def portrait(self) -> Portrait:
        data = self.loaded.card.data
        return choose_portrait(self.loaded.source, data.extensions, data.name,
                               self.loaded.image_png, self.options.image)

    @cached_property
    def portrait_png(self) -> bytes:
        buffer = io.BytesIO()
        self.portrait.image.save(buffer, format="PNG")
        return buffer.getvalue()


def _eliza_bytes(job: _Rendering) -> bytes:
    posts = generated_posts(job.loaded.source)
    character = to_eliza(job.loaded.card, posts, job.options.eliza_plugins)
    return pretty_json(character.model_dump(mode="json", exclude_none=True))


@dataclass(frozen=True)
class Exporter:
    """One export format: its file suffix, how a card becomes its bytes, whether it carries
    the card's picture (then a portrait note is reported)."""

    suffix: str
    render: Callable[[_Rendering], bytes]
    has_picture: bool = False


# The export formats, in `--format all` order: one entry adds one (cards/README.md).
EXPORTERS: dict[ExportFormat, Exporter] = {
    "v2": Exporter(".v2.json", lambda job: pretty_json(job.v2)),
    "v3": Exporter(".v3.json", lambda job: pretty_json(job.v3("ccdefault:"))),
    "png": Exporter(".png", lambda job: write_png_card(job.portrait.image, job.v2,
                                                       job.v3("ccdefault:")), has_picture=True),
    "charx": Exporter(".charx", lambda job: write_charx(job.v3(ICON_URI), job.portrait_png),
                      has_picture=True),
    "eliza": Exporter(".eliza.json", _eliza_bytes),
}
EXPORT_FORMATS: tuple[ExportFormat, ...] = tuple(EXPORTERS)
EXPORT_SUFFIXES: dict[ExportFormat, str] = {name: f.suffix for name, f in EXPORTERS.items()}


def export_card(loaded: LoadedCard, formats: tuple[ExportFormat, ...], out_dir: Path,
                image: Path | None = None) -> list[Path]:
    """Write the card in each format under out_dir; return the files written."""
    return write_exports(loaded, ExportOptions(formats, out_dir, image)).written


def write_exports(loaded: LoadedCard, options: ExportOptions,
                  taken: set[Path] | None = None) -> ExportResult:
    """Write the card in each format under options.out_dir.

    Files are named after the card (`ana_🌸.png`); a name another card of this run (`taken`)
    or, without `overwrite`, an existing file has gets `-2`, `-3`, … (all formats alike).
    """
    job = _Rendering(loaded, options)
    suffixes = [EXPORTERS[fmt].suffix for fmt in options.formats]
    stem = claim_stem(options.out_dir, export_stem(loaded.card.data.name), suffixes,
                      taken=set() if taken is None else taken, overwrite=options.overwrite)
    result = ExportResult()
    for fmt in options.formats:
        target = options.out_dir / f"{stem}{EXPORTERS[fmt].suffix}"
        _write(target, EXPORTERS[fmt].render(job))
        result.written.append(target)
    with_picture = any(EXPORTERS[fmt].has_picture for fmt in options.formats)
    note = job.portrait.note if with_picture else None
    result.notes += [note] if note else []
    return result


def _write(target: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(target, data)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc


def save_imported(loaded: LoadedCard, out_dir: Path) -> Path:
    """Store a foreign card as one of ours (`personas/{name}_persona.json`, image beside it).

    The tweet, calendar and image commands then work on it; `persona --complete` can add the
    stages it lacks.
    """
    card_path = unique_path(OutputLayout(out_dir).card_path(safe_slug(loaded.card.data.name)))
    extensions = dict(loaded.card.data.extensions)
    previous = extensions.get(PF_EXTENSION)
    ours = dict(previous) if isinstance(previous, dict) else {}
    ours["imported_from"] = {"file": loaded.source.name, "format": loaded.format}
    if loaded.image_png is not None:
        image_path = card_path.with_suffix(".png")
        _write(image_path, loaded.image_png)
        ours["source_image"] = SourceImageRef(
            name=image_path.name, path=str(image_path.resolve()),
            sha256=hashlib.sha256(loaded.image_png).hexdigest()).model_dump()
    elif isinstance(ours.get("source_image"), dict):
        # The path is the card's claim, not ours: later commands must not open it.
        ours["source_image"] = {k: v for k, v in ours["source_image"].items() if k != "path"}
    # Kept as the foreign card wrote it (not through PersonaExtension): an imported card's
    # extension may hold anything, and every key of it is preserved.
    extensions[PF_EXTENSION] = ours
    card = loaded.card.model_copy(
        update={"data": loaded.card.data.model_copy(update={"extensions": extensions})}
    )
    _write(card_path, pretty_json(card.model_dump(mode="json")))
    return card_path
