"""Safe names and atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from persona_foundry.files import atomic_write_json, pretty_json, safe_slug, unique_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ava Lindqvist", "ava_lindqvist"),
        ("../../etc/x", "etc_x"),
        ("李小龙", "李小龙"),
        ("  José  María ", "josé_maría"),
        ("CON", "con-"),
    ],
)
def test_safe_slug(text: str, expected: str) -> None:
    slug = safe_slug(text)
    assert slug.startswith(expected)
    assert "/" not in slug and ".." not in slug and slug


def test_unslugable_names_stay_distinct() -> None:
    assert safe_slug("🔥🔥") != safe_slug("💧💧")
    assert safe_slug("🔥🔥").startswith("persona-")


def test_unique_path(tmp_path: Path) -> None:
    first = tmp_path / "ava.json"
    first.write_text("{}")
    assert unique_path(first) == tmp_path / "ava-2.json"
    assert unique_path(first, taken={tmp_path / "ava-2.json"}) == tmp_path / "ava-3.json"


def test_atomic_write_leaves_no_temp_and_no_torn_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "card.json"
    atomic_write_json(target, {"name": "Ava"})
    assert target.read_text(encoding="utf-8") == '{\n  "name": "Ava"\n}\n'

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"name": "Changed"})
    assert target.read_text(encoding="utf-8") == '{\n  "name": "Ava"\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"]


def test_pretty_json_reads_like_the_standard_library_indented_output() -> None:
    payload = {"persona": "José 李", "tweets": [{"text": "Morning ☕ #run", "attempt": 1,
                                                 "share": 0.25, "tags": [], "image": None}],
               "days": {1: "ok"}}
    text = pretty_json(payload).decode("utf-8")
    assert "José 李" in text and "☕" in text  # readable, not \\u escapes
    assert text == json.dumps(payload, ensure_ascii=False, indent=2) + "\n"
