"""The picture an exported PNG or CHARX card carries, chosen without opening a path a card names.

In order: the user's `--image`; the picture the card file itself carries (a PNG card, a CHARX
icon); the source image our own run stored for the card, found inside the card's output folder
and matched by the sha256 the card records; else a plain portrait with the initials. A card from
elsewhere can name any path in `extensions.persona_foundry.source_image`; outside the output
folder that path is never opened, so a crafted card cannot pull a file off the user's disk into
an export.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, UnidentifiedImageError

from ..errors import InputError
from ..source_image import MAX_IMAGE_PIXELS, load_source_image
from ..store import extension_of
from ..store.layout import PERSONAS_DIR
from .limits import MAX_IMAGE_BYTES, read_bounded

PLACEHOLDER_SIZE = (512, 512)
STORED_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
NOT_READ = ("the source image it names is not a file of its output folder with the recorded "
            "sha256, so it was not read; a placeholder was used (pass --image to choose one)")


@dataclass(frozen=True)
class Portrait:
    """The picture to embed, and why it is not the expected one when it is not."""

    image: Image.Image
    note: str | None = None


def decode_picture(data: bytes, name: str | Path) -> Image.Image:
    """A card's picture decoded to RGB; InputError if it is not one or is a decompression bomb."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(name, f"its picture is {width}x{height} pixels, over the "
                                 f"{MAX_IMAGE_PIXELS:,}-pixel limit")
            return image.convert("RGB")
        except UnidentifiedImageError as exc:
            raise InputError(name, "its picture is not an image file") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
                SyntaxError, ValueError) as exc:
            raise InputError(name, f"its picture cannot be decoded: {exc}") from exc


def output_root(card_path: Path) -> Path:
    """The output folder a card belongs to: the one holding `personas/`, else the card's own."""
    folder = Path(os.path.abspath(card_path)).parent
    return folder.parent if folder.name == PERSONAS_DIR else folder


def stored_source_image(card_path: Path, extensions: dict[str, Any]) -> bytes | None:
    """The bytes of the source image our own run stored for this card, if any."""
    found = stored_source(card_path, extensions)
    return found[1] if found else None


def stored_source(card_path: Path, extensions: dict[str, Any]) -> tuple[Path, bytes] | None:
    """Where the source image our own run stored for this card is, and its bytes, if any.

    Only files inside the card's output folder are opened (the path the card records, then
    `{card stem}.png|.jpg|…` beside it), and only one whose sha256 is the recorded one counts.
    """
    ours = extension_of(extensions)
    record = ours.source_image if ours is not None else None
    if record is None or not record.sha256:
        return None
    named = [Path(record.path)] if record.path else []
    candidates = [*named, *(card_path.with_suffix(s) for s in STORED_IMAGE_SUFFIXES)]
    root = output_root(card_path)
    for candidate in candidates:
        data = _read_inside(candidate, root)
        if data is not None and hashlib.sha256(data).hexdigest() == record.sha256:
            return candidate, data
    return None


def _read_inside(candidate: Path, root: Path) -> bytes | None:
    """candidate's bytes if it is a file inside root, before and after following links."""
    lexical = Path(os.path.abspath(candidate))
    if not lexical.is_relative_to(root):
        return None  # not even looked at: a card must not make us probe the user's disk
    resolved = lexical.resolve()
    if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
        return None
    try:
        return read_bounded(resolved, MAX_IMAGE_BYTES)
    except InputError:
        return None


def choose_portrait(card_path: Path, extensions: dict[str, Any], name: str,
                    carried: bytes | None, override: Path | None) -> Portrait:
    """The picture for an export of the card at card_path (see the module docstring)."""
    if override is not None:
        return Portrait(load_source_image(override).image)
    note = None
    for data in (carried, stored_source_image(card_path, extensions)):
        if data is None:
            continue
        try:
            return Portrait(decode_picture(data, card_path))
        except InputError as exc:
            note = f"{exc.reason}; a placeholder was used"
    if note is None and carried is None and _names_a_source(extensions):
        note = NOT_READ
    return Portrait(placeholder_portrait(name), note)


def _names_a_source(extensions: dict[str, Any]) -> bool:
    ours = extension_of(extensions)
    return ours is not None and "source_image" in ours.model_fields_set


def placeholder_portrait(name: str) -> Image.Image:
    """A plain portrait with the persona's initials, for cards whose source image is gone."""
    image = Image.new("RGB", PLACEHOLDER_SIZE, (70, 80, 110))
    initials = "".join(part[0] for part in name.split()[:2]).upper() or "?"
    ImageDraw.Draw(image).text((200, 230), initials, fill=(240, 240, 240), font_size=96)
    return image
