"""The schema each call sends says what its validator demands: nothing required is missing, and
any reply the schema allows is accepted (except the few rules JSON Schema cannot state).

A schema-following backend (OpenAI strict outputs, vLLM guided decoding, llama.cpp grammars)
writes what the sent schema allows and nothing else; a property the model requires but the
schema lacks, or a bound only the validator knows, fails every call on such a backend.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from persona_foundry.calendar import MonthPlan, Slot
from persona_foundry.llm.schema_edit import with_keywords
from persona_foundry.llm.structured import json_schema_for
from persona_foundry.stages import STAGES
from persona_foundry.stages.base import PersonaInput, Stage
from persona_foundry.textchecks import MAX_WEIGHTED_LENGTH
from persona_foundry.tweets import TweetBatch, _restrict_batch
from schema_instances import instance_for

# Validator rules no JSON Schema keyword can state; a rejection must name one of them.
UNSTATABLE_RULES = (
    "write at least 3 different posts",  # distinct texts: uniqueItems compares whole items
    "every entry must be about something different",  # the same, for lorebook entries
    "each entry needs at least one trigger word",  # whitespace-only keys: text, not shape
)
SAMPLE_PERSONA = PersonaInput(image_name="ava.png", visual_facts="a portrait")
SAMPLE_INPUTS: dict[str, Any] = {"apparent_age": 31, "lorebook_entries": 6, "name": "Ana Ortiz",
                                 "handle": "anaortiz"}


def _resolve(node: Any, definitions: dict[str, Any]) -> Any:
    """The model's own schema with refs inlined, written independently of the code under test."""
    if isinstance(node, list):
        return [_resolve(item, definitions) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _resolve(copy.deepcopy(definitions[node["$ref"].rsplit("/", 1)[-1]]), definitions)
    return {key: _resolve(value, definitions) for key, value in node.items()}


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """Pydantic's schema of `model`, refs inlined."""
    schema = model.model_json_schema()
    return dict(_resolve(schema, schema.pop("$defs", {})))


def missing_required(expected: Any, sent: Any, path: str = "") -> list[str]:
    """Every property the model requires that the sent schema lacks or leaves optional."""
    if not isinstance(expected, dict) or not isinstance(sent, dict):
        return []
    problems = []
    sent_properties = sent.get("properties", {})
    for name in expected.get("required", []):
        if name not in sent_properties:
            problems.append(f"{path}.{name}: missing from properties")
        elif name not in sent.get("required", []):
            problems.append(f"{path}.{name}: not required")
    for name, sub in expected.get("properties", {}).items():
        problems += missing_required(sub, sent_properties.get(name), f"{path}.{name}")
    if "items" in expected:
        for index, position in enumerate(sent.get("prefixItems", [])):
            problems += missing_required(expected["items"], position, f"{path}[{index}]")
        if "items" in sent:
            problems += missing_required(expected["items"], sent["items"], f"{path}[]")
    sent_branches = sent.get("anyOf", [])
    for index, branch in enumerate(expected.get("anyOf", [])):
        sent_branch = sent_branches[index] if index < len(sent_branches) else None
        if sent_branch is None:
            problems.append(f"{path}: anyOf branch {index} missing")
        problems += missing_required(branch, sent_branch, f"{path}|{index}")
    return problems


def sent_schema(stage: Stage, inputs: dict[str, Any] = SAMPLE_INPUTS) -> dict[str, Any]:
    """The schema a stage's call sends for a persona with these inputs."""
    schema = json_schema_for(stage.output_model)
    if stage.adjust_schema is not None:
        schema = stage.adjust_schema(schema, stage.context(SAMPLE_PERSONA, supplied=inputs))
    return schema


def validation_context(stage: Stage) -> dict[str, Any]:
    """The context the pipeline validates a stage's reply with."""
    return stage.validation_context(stage.context(SAMPLE_PERSONA, supplied=SAMPLE_INPUTS))


def _batch(count: int) -> list[Slot]:
    return [Slot(id=f"2026120{index}-0800", scheduled_at="2026-12-01T08:00:00+00:00",
                 pillar="work", theme="t", format="image" if index % 2 else "text")
            for index in range(1, count + 1)]


def check_accepted(model: type[BaseModel], reply: Any, context: dict[str, Any]) -> None:
    """The validator accepts `reply`, or rejects it only for a rule JSON Schema cannot state."""
    try:
        model.model_validate(reply, context=context)
    except ValidationError as exc:
        if not any(rule in str(exc) for rule in UNSTATABLE_RULES):
            raise


@pytest.mark.parametrize("stage", STAGES, ids=lambda stage: stage.name)
def test_the_sent_schema_keeps_every_required_property(stage: Stage) -> None:
    assert missing_required(model_schema(stage.output_model), sent_schema(stage)) == []


def test_the_month_plan_and_posts_schemas_keep_every_required_property() -> None:
    assert missing_required(model_schema(MonthPlan), json_schema_for(MonthPlan)) == []
    posts = _restrict_batch(_batch(3))(json_schema_for(TweetBatch))
    assert missing_required(model_schema(TweetBatch), posts) == []


def test_the_check_looks_inside_anyof_branches() -> None:
    expected = {"anyOf": [{"properties": {"a": {}}, "required": ["a"]}, {"type": "null"}]}
    assert missing_required(expected, {"anyOf": [{"properties": {}}, {"type": "null"}]}) == [
        "|0.a: missing from properties"]
    assert missing_required(expected, {"type": "null"}) == [
        ": anyOf branch 0 missing", ": anyOf branch 1 missing"]


def test_a_property_named_title_survives_while_title_annotations_go() -> None:
    schema = json_schema_for(MonthPlan)
    event = schema["properties"]["events"]["items"]
    assert "title" in event["properties"] and "title" in event["required"]
    assert "title" not in schema and "title" not in event and "title" not in event["properties"][
        "day"]


def test_the_check_finds_a_dropped_property() -> None:
    expected = model_schema(MonthPlan)
    broken = json_schema_for(MonthPlan)
    event = broken["properties"]["events"]["items"]
    broken = copy.deepcopy(broken)
    del broken["properties"]["events"]["items"]["properties"]["title"]
    assert "title" in event["properties"]  # the cached original is untouched
    assert missing_required(expected, broken) == [".events[].title: missing from properties"]


@pytest.mark.parametrize("stage", STAGES, ids=lambda stage: stage.name)
@given(seed=st.integers(0, 2**32))
@settings(max_examples=60, deadline=None, database=None)
def test_every_reply_the_stage_schema_allows_is_accepted(stage: Stage, seed: int) -> None:
    schema = sent_schema(stage)
    reply = instance_for(schema, random.Random(seed))
    check_accepted(stage.output_model, reply, validation_context(stage))


@pytest.mark.parametrize("apparent", [5, 17, 31, 95])
def test_every_age_the_schema_allows_passes_for_any_apparent_age(apparent: int) -> None:
    persona = {**SAMPLE_INPUTS, "apparent_age": apparent}
    core = next(s for s in STAGES if s.name == "core")
    age = sent_schema(core, persona)["properties"]["age"]
    reply = instance_for(sent_schema(core, persona), random.Random(apparent))
    for value in range(age["minimum"], age["maximum"] + 1):
        core.output_model.model_validate({**reply, "age": value},
                                         context={"apparent_age": apparent})


@given(seed=st.integers(0, 2**32))
@settings(max_examples=20, deadline=None, database=None)
def test_the_core_schema_allows_only_the_drawn_identity(seed: int) -> None:
    core = next(s for s in STAGES if s.name == "core")
    reply = instance_for(sent_schema(core), random.Random(seed))
    assert (reply["name"], reply["handle"]) == ("Ana Ortiz", "anaortiz")
    other = {**reply, "name": "Maya Chen", "handle": "mayachen"}  # a backend ignoring schemas
    parsed = core.output_model.model_validate(other, context=validation_context(core))
    assert (parsed.name, parsed.handle) == ("Ana Ortiz", "anaortiz")  # type: ignore[attr-defined]


def test_a_core_age_the_photo_rules_out_is_outside_the_schema() -> None:
    age = sent_schema(next(s for s in STAGES if s.name == "core"))["properties"]["age"]
    assert (age["minimum"], age["maximum"]) == (21, 41)


@given(seed=st.integers(0, 2**32))
@settings(max_examples=60, deadline=None, database=None)
def test_every_month_plan_the_schema_allows_fits_its_month(seed: int) -> None:
    schema = with_keywords(json_schema_for(MonthPlan), ("events", "items", "day"), maximum=30)
    check_accepted(MonthPlan, instance_for(schema, random.Random(seed)), {"days_in_month": 30})


@given(count=st.integers(1, 8), seed=st.integers(0, 10_000))
@settings(max_examples=40, deadline=None, database=None)
def test_every_posts_reply_the_schema_allows_has_exactly_one_post_per_slot(
        count: int, seed: int) -> None:
    batch = _batch(count)
    schema = _restrict_batch(batch)(json_schema_for(TweetBatch))
    reply = instance_for(schema, random.Random(seed))
    jsonschema.Draft202012Validator(schema).validate(reply)
    parsed = TweetBatch.model_validate(reply, context={"slot_ids": [s.id for s in batch]})
    assert [tweet.slot_id for tweet in parsed.tweets] == [slot.id for slot in batch]
    for slot, tweet in zip(batch, parsed.tweets, strict=True):
        assert bool(tweet.image_prompt) == (slot.format == "image")
        assert len(tweet.text) <= MAX_WEIGHTED_LENGTH


def test_the_posts_schema_refuses_a_short_or_repeated_reply() -> None:
    batch = _batch(3)
    validator = jsonschema.Draft202012Validator(_restrict_batch(batch)(json_schema_for(TweetBatch)))
    ids = [slot.id for slot in batch]

    def post(slot: Slot, text: str = "hello there") -> dict[str, str]:
        return {"slot_id": slot.id, "text": text,
                "image_prompt": "a photo" if slot.format == "image" else ""}

    assert validator.is_valid({"tweets": [post(slot) for slot in batch]})
    assert not validator.is_valid({"tweets": [post(slot) for slot in batch[:2]]})
    assert not validator.is_valid({"tweets": [post(batch[0])] * 3})
    assert not validator.is_valid({"tweets": [post(batch[0], "x" * 281), *map(post, batch[1:])]})
    text_slot = next(slot for slot in batch if slot.format == "text")
    with_prompt = {**post(text_slot), "image_prompt": "a photo"}
    assert not validator.is_valid({"tweets": [with_prompt if p["slot_id"] == text_slot.id else p
                                              for p in map(post, batch)]})
    assert ids == [slot.id for slot in batch]
