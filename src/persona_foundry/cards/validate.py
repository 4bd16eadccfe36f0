"""`validate`: every problem an importer would reject a card for, and warnings, per file.

Problems (exit 1) are what importers reject. The V2 rules are SillyTavern's TavernCardValidator's
(exact spec and spec_version, the 14 data keys, array types, a book with `extensions` and
`entries`, non-empty name) plus unique lorebook ids; V3 adds `group_only_greetings`,
`use_regex`, dates and assets; a PNG must hold a decodable `chara` as its first text chunk
(older readers take the first) and may hold `ccv3`; ElizaOS files are checked against
`@elizaos/core` 1.7.2's schema (eliza_schema.py). A file over limits.py's limits is a problem.

Warnings (exit 0) are what some importers accept and others do not, or what crashes a
well-known importer; each names the importer or says it is our own rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .charx import CARD_NAME, EMBEDDED_URI_PREFIXES, embedded_member, read_charx
from .eliza_schema import eliza_problems, eliza_warnings
from .exchange import card_file_kind
from .limits import MAX_CARD_JSON_BYTES, MAX_IMAGE_BYTES, parse_card_json, read_bounded
from .png import CHUNK_V2, CHUNK_V3, decode_card, read_chunks, text_chunks

V2_STRING_KEYS = ("name", "description", "personality", "scenario", "first_mes", "mes_example",
                  "creator_notes", "system_prompt", "post_history_instructions", "creator",
                  "character_version")
V2_ARRAY_KEYS = ("alternate_greetings", "tags")
V1_KEYS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
ELIZA_MARKERS = {"bio", "messageExamples", "postExamples", "adjectives"}
V1_MARKERS = {"first_mes", "mes_example"}
SPEC_VERSIONS = {"chara_card_v2": "2.0", "chara_card_v3": "3.0"}
NULL_BOOK = ("data.character_book: is null; SillyTavern and RisuAI accept it (as no lorebook), "
             "the V2 spec's reference validator (character-card-utils) rejects it: omit the key "
             "or use an object")
CRASHES_SILLYTAVERN = ("SillyTavern's zip reader (yauzl) rejects such a name: SillyTavern 1.12 "
                       "leaves that error unhandled and its server stops, later versions refuse "
                       "the card")


@dataclass
class CardReport:
    """What validate says about one file."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, other: CardReport, prefix: str = "") -> None:
        """Take other's problems and warnings, each prefixed."""
        self.problems += [prefix + problem for problem in other.problems]
        self.warnings += [prefix + warning for warning in other.warnings]


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


def card_report(card: Any) -> CardReport:
    """Problems and warnings of a card object (V1, V2, V3 or an ElizaOS character)."""
    if not isinstance(card, dict):
        return CardReport(["the card is not a JSON object"])
    spec = card.get("spec")
    if spec is None and ELIZA_MARKERS & card.keys() and not V1_MARKERS & card.keys():
        return CardReport(eliza_problems(card), eliza_warnings(card))
    if spec is None:
        missing = [key for key in V1_KEYS if not isinstance(card.get(key), str)]
        return CardReport([f"V1 card: {key} missing or not a string" for key in missing])
    if not isinstance(spec, str) or spec not in SPEC_VERSIONS:
        return CardReport([f"spec: unknown value {spec!r} (expected chara_card_v2 or "
                           "chara_card_v3)"])
    report = CardReport()
    if card.get("spec_version") != SPEC_VERSIONS[spec]:
        report.problems.append(f"spec_version: {card.get('spec_version')!r}, expected "
                               f"{SPEC_VERSIONS[spec]!r}")
    data = card.get("data")
    if not isinstance(data, dict):
        report.problems.append("data: missing or not an object")
        return report
    report.problems += _data_problems(data, v3=spec == "chara_card_v3")
    if "character_book" in data and data["character_book"] is None:
        report.warnings.append(NULL_BOOK)
    return report


def card_problems(card: Any) -> list[str]:
    """Problems of a card object (V1, V2 or V3)."""
    return card_report(card).problems


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
    if data.get("character_book") is not None:
        problems += _book_problems(data["character_book"], v3)
    if v3:
        problems += _v3_problems(data)
    return problems


def _png_report(path: Path) -> CardReport:
    chunks = read_chunks(read_bounded(path, MAX_IMAGE_BYTES, what="the PNG card"), name=path.name)
    report = CardReport()
    bad_crc = sorted({c.kind.decode("latin-1") for c in chunks if not c.crc_ok})
    if bad_crc:
        report.problems.append(f"bad CRC in chunk(s) {', '.join(bad_crc)}")
    texts = text_chunks(chunks)
    keywords = [keyword for keyword, _ in texts]
    if CHUNK_V2 not in keywords and CHUNK_V3 not in keywords:
        report.problems.append("no 'chara' or 'ccv3' tEXt chunk: not a character card")
        return report
    if CHUNK_V2 not in keywords:
        report.problems.append("no 'chara' chunk: V2-only readers will not see the card")
    elif keywords[0] != CHUNK_V2:
        report.problems.append(f"'chara' is not the first tEXt chunk ({keywords[0]!r} is): "
                               "readers that take the first text chunk miss the card")
    for keyword, value in texts:
        if keyword in (CHUNK_V2, CHUNK_V3):
            try:
                card = decode_card(value, name=path, keyword=keyword)
            except InputError as exc:
                report.problems.append(exc.reason)
                continue
            report.add(card_report(card), f"{keyword}: ")
    return report


def _charx_report(path: Path) -> CardReport:
    contents = read_charx(path)
    report = CardReport()
    for name in contents.member_names:
        why = _unsafe_member_name(name)
        if why:
            report.warnings.append(f"archive member {name!r} is {why}: {CRASHES_SILLYTAVERN}")
    report.warnings += _escaping_asset_uris(contents.card)
    report.add(card_report(contents.card), f"{CARD_NAME}: ")
    return report


def _unsafe_member_name(name: str) -> str | None:
    """Why yauzl (SillyTavern's zip reader) rejects a member name: its validateFileName()."""
    normal = name.replace("\\", "/")  # yauzl's non-strict mode reads `\` as `/`
    if re.match(r"[a-zA-Z]:", normal) or normal.startswith("/"):
        return "an absolute path"
    return "a path out of the archive ('..')" if ".." in normal.split("/") else None


def _escaping_asset_uris(card: dict[str, Any]) -> list[str]:
    data = card.get("data")
    assets = data.get("assets") if isinstance(data, dict) else None
    return [f"{CARD_NAME}: data.assets[{number}].uri {asset['uri']!r} points outside the "
            "archive; SillyTavern and this tool ignore it, an importer that follows it reads "
            "files outside the card"
            for number, asset in enumerate(assets if isinstance(assets, list) else [])
            if isinstance(asset, dict) and isinstance(asset.get("uri"), str)
            and asset["uri"].lower().startswith(EMBEDDED_URI_PREFIXES)
            and embedded_member(asset["uri"]) is None]


def _json_report(path: Path) -> CardReport:
    raw = read_bounded(path, MAX_CARD_JSON_BYTES, what="the card")
    return card_report(parse_card_json(raw, name=path))


READERS: dict[str, Callable[[Path], CardReport]] = {
    "png": _png_report, "charx": _charx_report, "json": _json_report,
}


def file_report(path: Path) -> CardReport:
    """Every problem and warning of one card file (JSON, PNG or CHARX), or why it cannot be read."""
    try:
        return READERS[card_file_kind(path)](path)
    except InputError as exc:
        return CardReport([exc.reason])


def file_problems(path: Path) -> list[str]:
    """Every problem of one card file (JSON, PNG or CHARX), or why it cannot be read."""
    return file_report(path).problems
