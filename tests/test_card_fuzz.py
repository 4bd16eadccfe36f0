"""Whatever a card file holds, validate, import and export end in a card or a clear InputError:
hypothesis puts any JSON value in any slot of a card, and damages PNG and CHARX cards."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cardfiles import as_file, card_bytes, v2_card, v3_card
from persona_foundry.cards.exchange import EXPORT_FORMATS, export_card, load_card, save_imported
from persona_foundry.cards.validate import file_report
from persona_foundry.errors import InputError

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
SLOTS = ("spec", "data", "data.name", "data.tags", "data.character_book",
         "data.character_book.entries", "data.character_book.entries.0",
         "data.character_book.entries.0.keys", "data.extensions", "data.assets",
         "data.extensions.persona_foundry", "data.extensions.persona_foundry.core",
         "data.extensions.persona_foundry.strategy.pillars",
         "data.extensions.persona_foundry.example_tweets.tweets",
         "data.extensions.persona_foundry.source_image", "data.assets.0.uri")


def with_value(card: dict[str, Any], slot: str, value: Any) -> dict[str, Any]:
    """A copy of card with value at the dotted slot (objects made on the way; `0`: a list's
    first item)."""
    card = copy.deepcopy(card)
    node: Any = card
    *parents, last = slot.split(".")
    for key in parents:
        if isinstance(node, list):
            node = node[0] if node and isinstance(node[0], dict) else {}
            continue
        if not isinstance(node.get(key), dict | list):
            node[key] = {}
        node = node[key]
    if isinstance(node, list):
        node[:1] = [value]
    else:
        node[last] = value
    return card


def exercise(path: Path, folder: Path) -> None:
    """validate, import and export one file: only the two deliberate errors may come out."""
    file_report(path)
    try:
        loaded = load_card(path)
    except InputError:
        return
    save_imported(loaded, folder / "out")
    export_card(loaded, EXPORT_FORMATS, folder / "exports")


@settings(max_examples=60, deadline=None, database=None)
@given(slot=st.sampled_from(SLOTS), value=JSON_VALUES, kind=st.sampled_from(["json", "charx"]),
       v3=st.booleans())
def test_any_value_in_any_slot_is_a_clear_error_or_a_card(slot: str, value: Any, kind: str,
                                                          v3: bool) -> None:
    base = v3_card("Fuzz", character_book={"extensions": {}, "entries": [
        {"keys": ["k"], "content": "c", "extensions": {}, "enabled": True,
         "insertion_order": 1}]}, assets=[{"type": "icon", "uri": "ccdefault:", "name": "main",
                                           "ext": "png"}]) if v3 else v2_card("Fuzz")
    with tempfile.TemporaryDirectory() as folder:
        path = as_file(kind, Path(folder), card_bytes(with_value(base, slot, value)))
        exercise(path, Path(folder))


@settings(max_examples=60, deadline=None, database=None)
@given(kind=st.sampled_from(["png", "charx"]), cuts=st.lists(
    st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
    truncate=st.floats(0.05, 1))
def test_damaged_png_and_charx_cards_are_a_clear_error_or_a_card(
        kind: str, cuts: list[tuple[float, int]], truncate: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        good = as_file(kind, Path(folder), card_bytes(v3_card("Damaged")))
        data = bytearray(good.read_bytes())
        for where, byte in cuts:
            data[int(where * len(data))] = byte
        good.write_bytes(bytes(data[:max(1, int(truncate * len(data)))]))
        exercise(good, Path(folder))
