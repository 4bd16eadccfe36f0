"""`validate`: every problem an importer would reject a card for, per file.

The V2 rules are SillyTavern's TavernCardValidator's (exact spec and spec_version, the 14 data
keys, array types, a non-null book with `extensions` and `entries`, non-empty name) plus unique
lorebook ids; V3 adds `group_only_greetings`, `use_regex`, dates and assets; a PNG must hold a
decodable `chara` as its first text chunk (older readers take the first) and may hold `ccv3`;
ElizaOS files are checked against `@elizaos/core` 1.7.2's own schema (eliza_schema.py).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import InputError
from .charx import CARD_NAME, read_charx
from .eliza_schema import eliza_problems
from .png import CHUNK_V2, CHUNK_V3, PNG_SIGNATURE, decode_card, read_chunks, text_chunks

V2_STRING_KEYS = ("name", "description", "personality", "scenario", "first_mes", "mes_example",
                  "creator_notes", "system_prompt", "post_history_instructions", "creator",
                  "character_version")
V2_ARRAY_KEYS = ("alternate_greetings", "tags")
V1_KEYS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
ELIZA_MARKERS = {"bio", "messageExamples", "postExamples", "adjectives"}
V1_MARKERS = {"first_mes", "mes_example"}
SPEC_VERSIONS = {"chara_card_v2": "2.0", "chara_card_v3": "3.0"}


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)



ENTRY_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("keys", _is_str_list, "must be an array of strings"),
    ("content", lambda v: isinstance(v, str), "must be a string"),
    ("extensions", lambda v: isinstance(v, dict), "missing or not an object"),
    ("enabled", lambda v: isinstance(v, bool), "must be true or false"),
    ("insertion_order", lambda v: isinstance(v, int | float), "must be a number"),
)
ENTRY_RULES_V3 = (
    *ENTRY_RULES,
    ("use_regex", lambda v: isinstance(v, bool), "required in V3, must be true or false"),
)

def _book_problems(book: Any, v3: bool) -> list[str]:
    if book is None:
        return ["data.character_book: is null (importers reject it; omit it or use an object)"]
    if not isinstance(book, dict):
        return ["data.character_book: must be an object"]
    problems = []
    if not isinstance(book.get("extensions"), dict):
        problems.append("data.character_book.extensions: missing or not an object")
    entries = book.get("entries")
    if not isinstance(entries, list):
        return [*problems, "data.character_book.entries: missing or not an array"]
    ids = [entry.get("id") for entry in entries if isinstance(entry, dict) and "id" in entry]
    if len(ids) != len(set(map(str, ids))):
        problems.append(f"data.character_book.entries: duplicate ids {ids}")
    for number, entry in enumerate(entries):
        where = f"data.character_book.entries[{number}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object")
            continue
        rules = ENTRY_RULES_V3 if v3 else ENTRY_RULES
        problems += [f"{where}.{key}: {message}" for key, valid, message in rules
                     if not valid(entry.get(key))]
    return problems


def _v3_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    if not _is_str_list(data.get("group_only_greetings")):
        problems.append("data.group_only_greetings: required in V3, must be an array of strings")
    for key in ("creation_date", "modification_date"):
        if key in data and data[key] is not None and not isinstance(data[key], int | float):
            problems.append(f"data.{key}: must be a unix timestamp in seconds")
    assets = data.get("assets")
    if assets is None:
        return problems
    if not isinstance(assets, list):
        return [*problems, "data.assets: must be an array"]
    for number, asset in enumerate(assets):
        fields = ("type", "uri", "name", "ext")
        if not isinstance(asset, dict) or not all(isinstance(asset.get(f), str) for f in fields):
            problems.append(f"data.assets[{number}]: needs string type, uri, name and ext")
        elif asset["ext"] != asset["ext"].lower() or asset["ext"].startswith("."):
            problems.append(f"data.assets[{number}].ext: lowercase, without a dot")
    icons = [a for a in assets if isinstance(a, dict) and a.get("type") == "icon"]
    if len(icons) > 1 and sum(1 for a in icons if a.get("name") == "main") != 1:
        problems.append("data.assets: several icons need exactly one named 'main'")
    return problems


def card_problems(card: Any) -> list[str]:
    """Problems of a card object (V1, V2 or V3)."""
    if not isinstance(card, dict):
        return ["the card is not a JSON object"]
    spec = card.get("spec")
    if spec is None and ELIZA_MARKERS & card.keys() and not V1_MARKERS & card.keys():
        return eliza_problems(card)
    if spec is None:
        missing = [key for key in V1_KEYS if not isinstance(card.get(key), str)]
        return [f"V1 card: {key} missing or not a string" for key in missing]
    if spec not in SPEC_VERSIONS:
        return [f"spec: unknown value {spec!r} (expected chara_card_v2 or chara_card_v3)"]
    problems = []
    if card.get("spec_version") != SPEC_VERSIONS[spec]:
        problems.append(f"spec_version: {card.get('spec_version')!r}, expected "
                        f"{SPEC_VERSIONS[spec]!r}")
    data = card.get("data")
    if not isinstance(data, dict):
        return [*problems, "data: missing or not an object"]
    return problems + _data_problems(data, v3=spec == "chara_card_v3")


def _data_problems(data: dict[str, Any], *, v3: bool) -> list[str]:
    problems = []
    for key in V2_STRING_KEYS:
        if not isinstance(data.get(key), str):
            problems.append(f"data.{key}: missing or not a string")
    for key in V2_ARRAY_KEYS:
        if not _is_str_list(data.get(key)):
            problems.append(f"data.{key}: missing or not an array of strings")
    if not isinstance(data.get("extensions"), dict):
        problems.append("data.extensions: missing or not an object")
    if isinstance(data.get("name"), str) and not data["name"].strip():
        problems.append("data.name: empty")
    if "character_book" in data:
        problems += _book_problems(data["character_book"], v3)
    if v3:
        problems += _v3_problems(data)
    return problems


def _png_problems(raw: bytes, name: str) -> list[str]:
    try:
        chunks = read_chunks(raw, name=name)
    except InputError as exc:
        return [exc.reason]
    problems = [f"chunk {c.kind.decode('latin-1')}: bad CRC" for c in chunks if not c.crc_ok]
    texts = text_chunks(chunks)
    keywords = [keyword for keyword, _ in texts]
    if CHUNK_V2 not in keywords and CHUNK_V3 not in keywords:
        return [*problems, "no 'chara' or 'ccv3' tEXt chunk: not a character card"]
    if CHUNK_V2 not in keywords:
        problems.append("no 'chara' chunk: V2-only readers will not see the card")
    elif keywords[0] != CHUNK_V2:
        problems.append(f"'chara' is not the first tEXt chunk ({keywords[0]!r} is): readers "
                        "that take the first text chunk miss the card")
    for keyword, value in texts:
        if keyword in (CHUNK_V2, CHUNK_V3):
            try:
                card = decode_card(value)
            except ValueError as exc:
                problems.append(f"{keyword}: {exc}")
                continue
            problems += [f"{keyword}: {problem}" for problem in card_problems(card)]
    return problems


def file_problems(path: Path) -> list[str]:
    """Every problem of one card file (JSON, PNG or CHARX), or why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [f"cannot read: {exc.strerror or exc}"]
    if raw.startswith(PNG_SIGNATURE):
        return _png_problems(raw, str(path))
    if zipfile.is_zipfile(path):
        try:
            card, _ = read_charx(raw, name=str(path))
        except InputError as exc:
            return [exc.reason]
        return [f"{CARD_NAME}: {problem}" for problem in card_problems(card)]
    try:
        card = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"not JSON, PNG or CHARX: {exc}"]
    return card_problems(card)
