"""The folder's taken identities, without reading every card at every run's start.

A batch claims the name and handle of every card already in its output folder (pipeline.py:
`claim_folder_names`). Reading each card for them cost ~0.14 ms a card, 0.8 s of the start of a
run into a folder of 6,000, and it grows with the folder. `.identities.json` (this module is its
one reader and writer) keeps each card's name and handle with the file's size and mtime (ns) as
they were when it was read: a card whose stat still matches is not read again, any other is. It
is a cache, never the truth: a missing, broken or foreign index is rebuilt from the cards, and
two runs writing it at once leave one of their (each correct) versions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from .diversity import read_facts
from .files import atomic_write_bytes
from .store.layout import OutputLayout

# A card's entry: [size, mtime_ns, name, handle]; name "" for a file that is not one of our
# complete cards (nothing taken).
Entry = list[Any]


def _stamp(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_size, stat.st_mtime_ns


def _load(path: Path) -> dict[str, Entry]:
    try:
        index = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(index, dict):
        return {}
    return {name: entry for name, entry in index.items() if _well_formed(entry)}


def _well_formed(entry: Any) -> bool:
    return (isinstance(entry, list) and len(entry) == 4
            and all(isinstance(value, int) for value in entry[:2])
            and all(isinstance(value, str) for value in entry[2:]))


def _entry(card: Path, stamp: tuple[int, int]) -> Entry:
    facts = read_facts(card)
    if facts is None or not facts.name:
        return [*stamp, "", ""]
    return [*stamp, facts.name, facts.handle or ""]


def folder_identities(layout: OutputLayout) -> dict[str, tuple[str, str]]:
    """Every card's (name, handle) by file name (cards with no name left out); the index is
    brought up to date on the way."""
    index = _load(layout.identity_index_path)
    current: dict[str, Entry] = {}
    for card in layout.card_paths():
        try:
            stamp = _stamp(card.stat())  # before the read: a card changed after it reads again
        except OSError:
            continue  # gone since it was listed
        entry = index.get(card.name)
        current[card.name] = entry if entry is not None and tuple(entry[:2]) == stamp else (
            _entry(card, stamp))
    if current != index:
        atomic_write_bytes(layout.identity_index_path, orjson.dumps(current))
    return {card: (entry[2], entry[3]) for card, entry in current.items() if entry[2]}
