"""Lenient parsing, schema shape and the stage output models' rules."""

from __future__ import annotations

import json
from typing import Any

import pytest

from persona_foundry.llm.client import ChatRequest
from persona_foundry.llm.structured import json_schema_for, parse_json_leniently, validate_reply
from persona_foundry.stages import STAGES, STAGES_BY_NAME, check_dag, critical_path_s
from persona_foundry.stages.base import PersonaInput
from persona_foundry.stages.core import CorePersona
from persona_foundry.stages.lorebook import STAGE as LOREBOOK
from persona_foundry.stages.lorebook import CharacterBook, exact_entry_count
from persona_foundry.stages.strategy import TweetStrategy
from stage_replies import STAGE_REPLIES


def test_parse_fenced_json_with_control_characters() -> None:
    text = '```json\n{"bio": "line one\nline two\ttabbed"}\n```'
    assert parse_json_leniently(text) == {"bio": "line one\nline two\ttabbed"}


def test_parse_repairs_trivial_breakage() -> None:
    assert parse_json_leniently('{"a": 1, "b": [1, 2,],}') == {"a": 1, "b": [1, 2]}
    assert parse_json_leniently("{'a': 'single quotes'}") == {"a": "single quotes"}
    assert parse_json_leniently('{"a": "cut off') == {"a": "cut off"}


@pytest.mark.parametrize("text", ["Sorry, I cannot help with that.", ""])
def test_parse_refuses_prose(text: str) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_json_leniently(text)


def _walk(node: Any, path: str, problems: list[str]) -> None:
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "string" and "maxLength" not in node and "enum" not in node:
            problems.append(f"{path}: string without maxLength")
        if kind == "array" and "maxItems" not in node:
            problems.append(f"{path}: array without maxItems")
        for key, value in node.items():
            _walk(value, f"{path}.{key}", problems)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _walk(value, f"{path}[{index}]", problems)


@pytest.mark.parametrize("stage", STAGES, ids=lambda stage: stage.name)
def test_every_string_and_list_is_bounded(stage: Any) -> None:
    problems: list[str] = []
    schema = json_schema_for(stage.output_model)
    _walk(schema, stage.name, problems)
    assert problems == []
    assert "$defs" not in schema and "$ref" not in str(schema)


@pytest.mark.parametrize("name", list(STAGE_REPLIES))
def test_fixture_replies_validate(name: str) -> None:
    stage = STAGES_BY_NAME[name]
    stage.output_model.model_validate(STAGE_REPLIES[name], context={"lorebook_entries": 6})


def test_core_persona_is_always_an_adult() -> None:
    minor = {**STAGE_REPLIES["core"], "age": 16}
    with pytest.raises(ValueError, match="age"):
        validate_reply(CorePersona, json.dumps(minor), None)


def test_core_cleans_handle_and_unknown_timezone() -> None:
    core = CorePersona.model_validate(
        {**STAGE_REPLIES["core"], "handle": "@Ava Orbits!", "timezone": "Mars/Olympus"}
    )
    assert core.handle == "Ava_Orbits" and core.timezone == "UTC"


def test_strategy_shares_are_rescaled_and_times_normalised() -> None:
    reply = {**STAGE_REPLIES["strategy"], "posting_times": ["9:05", "19:30", "19:30"]}
    reply["pillars"] = [dict(p, share_percent=40) for p in reply["pillars"]]
    strategy = TweetStrategy.model_validate(reply)
    assert sum(p.share_percent for p in strategy.pillars) == 100
    assert strategy.posting_times == ["09:05", "19:30"]


def test_lorebook_count_is_checked_and_pinned_in_the_schema() -> None:
    few = {"entries": STAGE_REPLIES["lorebook"]["entries"][:2]}
    with pytest.raises(ValueError, match="exactly 4 entries"):
        CharacterBook.model_validate(few, context={"lorebook_entries": 4})
    ctx = LOREBOOK.context(PersonaInput("a.png", "facts"), supplied={"lorebook_entries": 4})
    schema = exact_entry_count(json_schema_for(CharacterBook), ctx)
    assert schema["properties"]["entries"]["minItems"] == 4
    assert schema["properties"]["entries"]["maxItems"] == 4


def test_dag_is_declared_in_order_and_matches_the_design() -> None:
    check_dag(STAGES)
    deps = {stage.name: stage.depends_on for stage in STAGES}
    assert deps["core"] == ()
    assert deps["example_tweets"] == ("core", "strategy")
    for leaf in ("strategy", "social", "authenticity", "visual", "lorebook"):
        assert deps[leaf] == ("core",)
    # The original's per-stage seconds give a 60 s critical path (62 s with the merge).
    assert critical_path_s(STAGES, "core") == 60
    with pytest.raises(ValueError, match="declared after it"):
        check_dag(tuple(reversed(STAGES)))


def test_fingerprint_changes_with_anything_that_changes_the_reply() -> None:
    base = ChatRequest("m", [{"role": "user", "content": "x"}], "core", {"type": "object"}, 0.5, 9)
    assert base.fingerprint() == ChatRequest(
        "m", [{"role": "user", "content": "x"}], "core", {"type": "object"}, 0.5, 9
    ).fingerprint()
    reworded = base.with_messages([{"role": "user", "content": "y"}])
    assert base.fingerprint() != reworded.fingerprint()
    other_model = ChatRequest("n", base.messages, "core", base.json_schema, 0.5, 9)
    assert base.fingerprint() != other_model.fingerprint()
