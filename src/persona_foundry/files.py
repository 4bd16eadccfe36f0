"""Safe file names and atomic writes: no name from a model or a user escapes the output folder."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import orjson

from .errors import OutputError

MAX_SLUG_CHARS = 80
JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
CARD_SUFFIX = "_persona"
CARD_FILE_SUFFIX = f"{CARD_SUFFIX}.json"
_UNSAFE_SLUG_CHARS = re.compile(r"[^\w\-]+", re.UNICODE)
_RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                   *(f"lpt{i}" for i in range(10))}


def safe_slug(text: str, *, fallback: str = "persona") -> str:
    """A file-name-safe slug that keeps letters of any script (CJK stays CJK) and drops the rest.

    Distinct inputs that slug to nothing (emoji only, punctuation only) still get distinct slugs:
    the fallback carries a short hash of the original text.
    """
    normalized = unicodedata.normalize("NFKC", text).strip().lower()
    slug = _UNSAFE_SLUG_CHARS.sub("_", normalized).strip("_-.")
    slug = re.sub(r"_{2,}", "_", slug)[:MAX_SLUG_CHARS].strip("_-")
    if not slug or slug in _RESERVED_NAMES:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
        slug = f"{fallback}-{digest}" if not slug else f"{slug}-{digest}"
    return slug


def persona_key(card_path: Path) -> str:
    """The slug a persona's content files are named by: `ava` for `ava_persona.json`."""
    stem = card_path.stem.replace(CARD_SUFFIX, "", 1)
    return safe_slug(stem or card_path.stem)


def unique_path(path: Path, *, taken: set[Path] | None = None) -> Path:
    """`path` itself if free, else `stem-2.ext`, `stem-3.ext`, … (also avoiding `taken`)."""
    taken = taken or set()
    candidate = path
    counter = 2
    while candidate.exists() or candidate in taken:
        candidate = path.with_name(f"{path.stem}-{counter}{path.suffix}")
        counter += 1
    return candidate


def _create_temp_file(folder: Path, name: str) -> tuple[int, str]:
    """A new temp file beside `name`, created with mode 0o666 so the umask decides, as open()
    does (mkstemp's 0o600 would leave every output unreadable to other users and services)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp_name = str(folder / f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp_name, flags, 0o666), tmp_name
        except FileExistsError:
            continue  # 48 random bits taken: try another


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path via a temp file in the same folder and a rename (never a torn file).

    The file gets the mode any new file gets (0o644 under the usual umask 022).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _create_temp_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def pretty_json(payload: Any) -> bytes:
    """payload as UTF-8 JSON indented by 2, non-ASCII kept readable, with a final newline."""
    # orjson, not json: runs rewrite the posts and calendar files while calls are out, and
    # the standard library's indenting encoder is pure Python (milliseconds per 100 posts,
    # with the event loop stalled meanwhile).
    return orjson.dumps(payload, option=JSON_OPTIONS) + b"\n"


def atomic_write_json(path: Path, payload: Any) -> None:
    """Atomically write payload as pretty JSON."""
    atomic_write_bytes(path, pretty_json(payload))


def check_writable_dir(path: Path) -> None:
    """Create path if needed and prove a file can be written there, or raise OutputError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe."):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write to output folder {path}: {exc.strerror or exc}") from exc
