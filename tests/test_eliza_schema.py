"""ElizaOS character files: `validate` says what `@elizaos/core` 1.7.2 says, and warns, labelled
as ours, about what it accepts but our exports avoid.

ELIZA_CASES are the verdicts of `@elizaos/core` 1.7.2's own validateCharacter() (zod), run with
node on exactly these objects; `eliza_cases_json()` writes them out to re-check after an upgrade:
    python -c "import sys; sys.path.insert(0, 'tests'); import test_eliza_schema as t; \
               t.eliza_cases_json('cases.json')"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cardfiles import run_cli, says, v2_card, write_json
from persona_foundry.cards.eliza import to_eliza
from persona_foundry.cards.eliza_schema import eliza_problems, eliza_warnings
from persona_foundry.cards.exchange import load_card

BASE: dict[str, Any] = {"name": "Ava", "bio": ["x"]}
UUID = "123e4567-e89b-12d3-a456-426614174000"


def example(**content: Any) -> dict[str, Any]:
    return {**BASE, "messageExamples": [[{"name": "a", "content": content}]]}


# name: (character, None if ElizaOS accepts it, else the path its error names)
ELIZA_CASES: dict[str, tuple[Any, str | None]] = {
    "username-null": ({**BASE, "username": None}, "username"),
    "system-null": ({**BASE, "system": None}, "system"),
    "username-number": ({**BASE, "username": 5}, "username"),
    "bio-string": ({"name": "Ava", "bio": "one line"}, None),
    "bio-empty-list": ({"name": "Ava", "bio": []}, None),
    "bio-numbers": ({"name": "Ava", "bio": [1]}, "bio"),
    "bio-missing": ({"name": "Ava"}, "bio"),
    "name-empty": ({"name": "", "bio": "x"}, "name"),
    "actions-providers-extra-content": (example(text="hi", actions=["REPLY"],
                                                providers=["KNOWLEDGE"], custom=1), None),
    "content-text-null": (example(text=None), "messageExamples.0.0.content.text"),
    "in-reply-to-not-uuid": (example(inReplyTo="x"), "messageExamples.0.0.content.inReplyTo"),
    "channel-type-lowercase": (example(channelType="dm"),
                               "messageExamples.0.0.content.channelType"),
    "channel-and-attachment": (example(channelType="DM", attachments=[
        {"id": "1", "url": "u", "contentType": "image", "z": 1}]), None),
    "attachment-without-url": (example(attachments=[{"id": "1"}]),
                               "messageExamples.0.0.content.attachments.0.url"),
    "example-extra-key": ({**BASE, "messageExamples": [[{"name": "a", "content": {},
                                                         "extra": 1}]]}, None),
    "settings": ({**BASE, "settings": {"a": "x", "b": True, "c": 3, "d": {"e": None},
                                       "f": [None]}}, None),
    "settings-null-value": ({**BASE, "settings": {"a": None}}, "settings.a"),
    "secrets": ({**BASE, "secrets": {"k": 1.5, "b": False}}, None),
    "secrets-object": ({**BASE, "secrets": {"k": {"a": 1}}}, "secrets.k"),
    "knowledge": ({**BASE, "knowledge": ["a.md", {"path": "b.md", "shared": True},
                                         {"directory": "d"}, {"path": "c", "extra": 1}]}, None),
    "knowledge-without-path": ({**BASE, "knowledge": [{"shared": True}]}, "knowledge.0"),
    "templates": ({**BASE, "templates": {"a": "x"}}, None),
    "templates-number": ({**BASE, "templates": {"a": 1}}, "templates.a"),
    "style-extra-key": ({**BASE, "style": {"all": ["a"], "extra": 1}}, None),
    "style-null-list": ({**BASE, "style": {"all": None}}, "style.all"),
    "empty-lists": ({**BASE, "messageExamples": [], "postExamples": [], "topics": [],
                     "adjectives": [], "style": {}}, None),
    "post-examples-numbers": ({**BASE, "postExamples": [1]}, "postExamples.0"),
    "plugins-string": ({**BASE, "plugins": "x"}, "plugins"),
    "id-not-uuid": ({**BASE, "id": "nope"}, "id"),
    "id-uuid": ({**BASE, "id": UUID}, None),
    "lore-unknown-key": ({**BASE, "lore": ["x"]}, "lore"),
}


def eliza_cases_json(path: str) -> None:
    """Write ELIZA_CASES for the node check in the module docstring."""
    Path(path).write_text(json.dumps({k: v for k, (v, _) in ELIZA_CASES.items()}), "utf-8")


@pytest.mark.parametrize(("character", "rejected_at"), ELIZA_CASES.values(),
                         ids=ELIZA_CASES.keys())
def test_eliza_validation_matches_elizaos_core(character: Any, rejected_at: str | None) -> None:
    problems = eliza_problems(character)
    if rejected_at is None:
        assert problems == []
    else:
        assert problems and any(f"ElizaOS: {rejected_at}" in p for p in problems), problems


def test_what_elizaos_accepts_but_we_avoid_is_a_warning_labelled_ours(tmp_path: Path) -> None:
    path = write_json(tmp_path / "min.eliza.json", {"name": "Ava", "bio": "one line"})
    result = run_cli("validate", path)
    assert result.exit_code == 0 and says(result, "ok")
    warnings = eliza_warnings({"name": "Ava", "bio": "one line"})
    ours = [w for w in warnings if w.startswith("Persona Foundry's rule (ElizaOS accepts this)")]
    assert any("bio is one string" in w for w in ours)
    assert any("postExamples" in w for w in ours) and any("style.chat" in w for w in ours)
    assert any("plugin-sql" in w and "does not start" in w for w in warnings)


def test_an_export_passes_elizaos_and_lists_the_plugins_a_working_agent_needs(
        tmp_path: Path) -> None:
    loaded = load_card(write_json(tmp_path / "ana.json", v2_card("Ana")))
    character = to_eliza(loaded.card).model_dump(mode="json", exclude_none=True)
    assert character["plugins"] == [
        "@elizaos/plugin-sql", "@elizaos/plugin-openai", "@elizaos/plugin-bootstrap"]
    assert eliza_problems(character) == [] and eliza_warnings(character) == []
