"""Export file names: the card's name kept readable (any script, emoji too), never a path, and
never a name another file of the same run, or an earlier one, already has."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ..files import safe_slug

# Room for `-NNN` and `.eliza.json` under the 255-byte file-name limit of common file systems.
MAX_STEM_BYTES = 150
ZERO_WIDTH_JOINER = "\u200d"  # joins emoji sequences (👩‍🚀): part of the emoji, kept


def _kept(char: str) -> bool:
    """Letters, marks and digits of any script, non-ASCII symbols (emoji, ©), `-` and `_`."""
    category = unicodedata.category(char)
    return (category[0] in "LMN" or (category in ("So", "Sk") and not char.isascii())
            or char in ("-", "_", ZERO_WIDTH_JOINER))


def export_stem(name: str) -> str:
    """The file stem for a card's exports: `ana_🌸` for `Ana 🌸`, `李小龍` stays `李小龍`.

    Path separators, dots, spaces, control and bidi characters become `_`. An all-ASCII result
    is exactly files.safe_slug's, so the names of earlier exports stay the same.
    """
    text = unicodedata.normalize("NFKC", name).strip().lower()
    stem = re.sub(r"_{2,}", "_", "".join(c if _kept(c) else "_" for c in text)).strip("_-")
    stem = stem.encode("utf-8")[:MAX_STEM_BYTES].decode("utf-8", "ignore").strip("_-")
    return stem if stem and not stem.isascii() else safe_slug(name)


def claim_stem(out_dir: Path, stem: str, suffixes: Iterable[str], *, taken: set[Path],
               overwrite: bool) -> str:
    """stem, else stem-2, stem-3, …: the first whose files no earlier card of this run wrote and,
    unless overwrite, no file in out_dir already has. The files are added to taken."""
    suffixes = tuple(suffixes)
    candidate, number = stem, 1
    while True:
        paths = {out_dir / f"{candidate}{suffix}" for suffix in suffixes}
        if not paths & taken and (overwrite or not any(path.exists() for path in paths)):
            taken.update(paths)
            return candidate
        number += 1
        candidate = f"{stem}-{number}"
