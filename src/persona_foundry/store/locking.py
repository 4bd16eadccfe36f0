"""The one locked read-modify-write every writer of the output folder uses.

A file lock serialises writers across processes; the replace is atomic, so a reader never sees a
torn file; a version (the hash of the bytes read) lets an editor that read a file earlier — a
browser tab, a long CLI run — find out that someone changed it since, instead of overwriting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from ..errors import OutputError, PersonaFoundryError
from ..files import atomic_write_bytes

LOCK_TIMEOUT_S = 60.0
VERSION_HEX_CHARS = 16
T = TypeVar("T")
Doc = TypeVar("Doc")


class StaleVersionError(PersonaFoundryError):
    """The file changed since the caller read it; carries the current version."""

    def __init__(self, path: Path, expected: str, current: str) -> None:
        self.path, self.expected, self.current = path, expected, current
        super().__init__(f"{path} was changed by someone else since it was read "
                         f"(version {expected}, now {current}); reload and try again")


def version_of(data: bytes) -> str:
    """The version of a file's content: a short hash of its bytes."""
    return hashlib.sha256(data).hexdigest()[:VERSION_HEX_CHARS]


def file_lock(path: Path) -> FileLock:
    """The lock every writer of `path` takes (a sibling `.lock` file)."""
    return FileLock(f"{path}.lock", timeout=LOCK_TIMEOUT_S)


def locked_update(path: Path, parse: Callable[[Path, bytes], Doc],
                  dump: Callable[[Doc], bytes], change: Callable[[Doc], T], *,
                  expected_version: str | None = None) -> tuple[T, str]:
    """Under the file's lock: read, check the version, apply `change`, replace atomically.

    Returns what `change` returned and the file's new version. Raises StaleVersionError when
    `expected_version` is given and the file no longer has it (nothing is written then).
    """
    try:
        with file_lock(path):
            raw = path.read_bytes() if path.exists() else b""
            if expected_version is not None and version_of(raw) != expected_version:
                raise StaleVersionError(path, expected_version, version_of(raw))
            document = parse(path, raw)
            result = change(document)
            written = dump(document)
            atomic_write_bytes(path, written)
    except Timeout as exc:
        raise OutputError(f"{path} stayed locked for {LOCK_TIMEOUT_S:.0f} s by another "
                          "process") from exc
    return result, version_of(written)


def locked_create(path: Path, data: bytes) -> bool:
    """Write `path` only if it does not exist yet (under its lock); False when it already did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path):
        if path.exists():
            return False
        atomic_write_bytes(path, data)
    return True
