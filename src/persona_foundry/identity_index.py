"""The folder's taken identities, without reading every card at every run's start.

A batch claims the name and handle of every card already in its output folder (pipeline.py:
`claim_folder_names`). Reading each card for them cost ~0.14 ms a card, 0.8 s of the start of a
run into a folder of 6,000, and it grows with the folder. `.identities.json` (this module is its
one reader and writer) keeps each named card's name and handle with the file's size, mtime (ns)
and inode as they were when it was read: a card whose stat still matches is not read again.

It is a cache, never the truth, and it errs towards reading:
- a card our writers replace gets a new inode (atomic rename), so it is read again however soon;
- a card written in place within RACY_S of a scan is not cached (a second write in the same
  timestamp tick, with the same size, would otherwise go unseen: git's "racy" rule);
- a card that cannot be read, or names nobody, is not cached: it is read at every scan;
- a missing, broken, foreign or older index is rebuilt from the cards; one that cannot be
  written is skipped; two runs writing it at once each leave a correct version.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

from .diversity import read_facts
from .files import atomic_write_bytes
from .store.layout import OutputLayout

log = logging.getLogger(__name__)
VERSION = 1  # raised whenever what a card's entry holds, or how it is read, changes
RACY_S = 2.0
# A card's entry: [size, mtime_ns, inode, name, handle].
Entry = list[Any]
Stamp = tuple[int, int, int]


def _stamp(stat: os.stat_result) -> Stamp:
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _load(path: Path) -> dict[str, Entry]:
    try:
        index = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(index, dict) or index.get("version") != VERSION:
        return {}
    cards = index.get("cards")
    if not isinstance(cards, dict):
        return {}
    return {name: entry for name, entry in cards.items() if _well_formed(entry)}


def _well_formed(entry: Any) -> bool:
    return (isinstance(entry, list) and len(entry) == 5
            and all(isinstance(value, int) for value in entry[:3])
            and all(isinstance(value, str) for value in entry[3:]) and bool(entry[3]))


def _read(card: Path, stamp: Stamp) -> Entry | None:
    facts = read_facts(card)
    if facts is None or not facts.name:
        return None  # unreadable, not ours or incomplete: nothing taken, nothing cached
    return [*stamp, facts.name, facts.handle or ""]


def _save(path: Path, cards: dict[str, Entry]) -> None:
    try:
        atomic_write_bytes(path, orjson.dumps({"version": VERSION, "cards": cards}))
    except OSError as exc:  # the index only saves time: the run goes on without it
        log.warning("cannot write %s (%s): the next run reads every card again", path, exc)


def folder_identities(layout: OutputLayout) -> dict[str, tuple[str, str]]:
    """Every named card's (name, handle) by file name; the index is brought up to date."""
    index = _load(layout.identity_index_path)
    found: dict[str, Entry] = {}
    cacheable: dict[str, Entry] = {}
    racy_after = time.time_ns() - int(RACY_S * 1e9)
    for card in layout.card_paths():
        try:
            stamp = _stamp(card.stat())  # before the read: a card changed after it reads again
        except OSError:
            continue  # gone since it was listed
        entry = index.get(card.name)
        if entry is None or tuple(entry[:3]) != stamp:
            entry = _read(card, stamp)
        if entry is None:
            continue
        found[card.name] = entry
        if stamp[1] < racy_after:
            cacheable[card.name] = entry
    if cacheable != index:
        _save(layout.identity_index_path, cacheable)
    return {card: (entry[3], entry[4]) for card, entry in found.items()}
