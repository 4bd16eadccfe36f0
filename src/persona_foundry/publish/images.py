"""Post images made ready for a platform: inside the output folder, within its size limit.

A PNG render is often larger than Bluesky's 2,000,000 bytes; it is re-encoded as JPEG at
falling quality, then scaled down, until it fits. The pixels' shape (aspect ratio) is kept.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from .base import PreparedImage

JPEG_QUALITIES = (90, 80, 70, 60, 50)
SCALE_STEP = 0.75  # each further try keeps 3/4 of the width and height
MIN_SIDE_PX = 256
MIME_BY_FORMAT = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp",
                  "GIF": "image/gif"}


def prepare_image(path: Path, alt_text: str, *, max_bytes: int,
                  max_alt_chars: int) -> PreparedImage:
    """The image at `path` as bytes the platform takes (recompressed when too big)."""
    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size, kind = image.size, image.format or ""
            fitted = data if len(data) <= max_bytes and kind in MIME_BY_FORMAT else (
                _recompress(image, max_bytes, path))
    except (OSError, UnidentifiedImageError) as exc:
        raise InputError(path, f"post image unreadable: {exc}") from exc
    recompressed = fitted is not data
    mime = "image/jpeg" if recompressed else MIME_BY_FORMAT[kind]
    name = path.with_suffix(".jpg").name if recompressed else path.name
    with Image.open(io.BytesIO(fitted)) as final:
        width, height = final.size if recompressed else size
    return PreparedImage(data=fitted, mime_type=mime, file_name=name, width=width,
                         height=height, alt_text=alt_text[:max_alt_chars])


def _recompress(image: Image.Image, max_bytes: int, path: Path) -> bytes:
    """JPEG at falling quality, then smaller, until it fits in `max_bytes`."""
    rgb = image.convert("RGB")
    while True:
        for quality in JPEG_QUALITIES:
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        width, height = (round(side * SCALE_STEP) for side in rgb.size)
        if min(width, height) < MIN_SIDE_PX:
            raise InputError(path, f"post image cannot be brought under {max_bytes} bytes")
        rgb = rgb.resize((width, height), Image.Resampling.LANCZOS)
