"""The schema-instance generator behind the schema server: every keyword honoured, over seeds."""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter
from datetime import date, datetime, time
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

import schema_instances
from persona_foundry.calendar import MonthPlan
from persona_foundry.llm.structured import json_schema_for
from persona_foundry.stages import STAGES, PersonaInput, Stage, StageContext
from persona_foundry.textchecks import jaccard, language_problem
from persona_foundry.tweets import TweetBatch
from schema_instances import InvalidInstanceError, UnsupportedSchemaError, instance_for
from schema_server import CHARS_PER_TOKEN, SchemaResponder
from schema_strings import CONTENT_WORDS, FUNCTION_WORDS

SEEDS = range(200)
VOCABULARY = {word.lower() for word in FUNCTION_WORDS + CONTENT_WORDS}


def instances(schema: dict[str, Any], seeds: range = SEEDS) -> list[Any]:
    """One instance per seed, each also checked here by jsonschema."""
    validator = Draft202012Validator(schema)
    made = [instance_for(schema, random.Random(seed)) for seed in seeds]
    for value in made:
        validator.validate(value)
    return made


@pytest.mark.parametrize(("kind", "python"), [
    ("object", dict), ("array", list), ("string", str), ("integer", int), ("number", float),
    ("boolean", bool), ("null", type(None)),
])
def test_each_type_gives_values_of_that_type(kind: str, python: type) -> None:
    assert all(type(value) is python for value in instances({"type": kind}))


def test_a_list_of_types_gives_each_of_them() -> None:
    made = instances({"type": ["string", "integer", "null"], "maxLength": 3, "minimum": 5})
    assert {type(value) for value in made} == {str, int, type(None)}
    assert all(value >= 5 for value in made if isinstance(value, int))


def test_required_always_optional_sometimes_nothing_unlisted() -> None:
    schema = {"type": "object", "additionalProperties": False,
              "properties": {"a": {"type": "integer"}, "b": {"type": "string"},
                             "c": {"type": "boolean"}},
              "required": ["a", "c"]}
    made = instances(schema)
    assert all({"a", "c"} <= value.keys() <= {"a", "b", "c"} for value in made)
    assert 0 < sum("b" in value for value in made) < len(made)


def test_required_names_not_in_properties_are_written() -> None:
    made = instances({"type": "object", "required": ["x"], "additionalProperties":
                      {"type": "integer"}})
    assert all(isinstance(value["x"], int) for value in made)


def test_enum_gives_every_member_and_nothing_else() -> None:
    members = ["trip", "project", 3, None]
    made = instances({"enum": members})
    assert Counter(map(repr, made)).keys() == set(map(repr, members))


def test_enum_members_the_type_rules_out_are_never_chosen() -> None:
    assert set(instances({"type": "string", "enum": ["a", 1, "b"]})) == {"a", "b"}


def test_const() -> None:
    assert all(value == {"k": [1, 2]} for value in instances({"const": {"k": [1, 2]}}))


def test_any_of_picks_every_branch() -> None:
    made = instances({"anyOf": [{"type": "integer"}, {"type": "null"}, {"type": "string",
                                                                        "maxLength": 4}]})
    assert {type(value) for value in made} == {int, type(None), str}


def test_one_of_gives_values_matching_exactly_one_branch() -> None:
    schema = {"type": "integer", "minimum": 0, "maximum": 10,
              "oneOf": [{"maximum": 6}, {"minimum": 4}]}
    made = instances(schema)
    assert not {4, 5, 6} & set(made)
    assert {value <= 3 for value in made} == {True, False}


def test_sibling_keywords_of_a_branch_apply_too() -> None:
    made = instances({"maxLength": 5, "anyOf": [{"type": "string"}]})
    assert all(len(value) <= 5 for value in made)


@pytest.mark.parametrize("where", ["$defs", "definitions"])
def test_refs_resolve_into_defs_and_definitions_recursively(where: str) -> None:
    schema = {
        where: {"Node": {"type": "object", "required": ["name"], "additionalProperties": False,
                         "properties": {"name": {"type": "string", "maxLength": 8},
                                        "children": {"type": "array", "maxItems": 3,
                                                     "items": {"$ref": f"#/{where}/Node"}}}}},
        "$ref": f"#/{where}/Node",
    }
    made = instances(schema)
    assert all(isinstance(value["name"], str) for value in made)
    assert any(value.get("children") for value in made)


def test_a_ref_with_sibling_constraints_honours_both() -> None:
    schema = {"$defs": {"Word": {"type": "string"}}, "$ref": "#/$defs/Word", "maxLength": 3}
    assert all(len(value) <= 3 for value in instances(schema))


@pytest.mark.parametrize("pattern", [
    r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$", r"^[A-Z]{2}-\d{3}$", r"^(ab|cd)+x?$",
    r"^[^aeiou\s]{3,5}\.\w*$", r"^[a-c]+?z{2}$",
])
def test_pattern_matches(pattern: str) -> None:
    made = instances({"type": "string", "pattern": pattern})
    assert all(re.fullmatch(pattern.strip("^$"), value) for value in made)
    assert len(set(made)) > 1


def test_pattern_with_length_bounds() -> None:
    made = instances({"type": "string", "pattern": "^[a-z]+$", "minLength": 3, "maxLength": 4})
    assert all(3 <= len(value) <= 4 for value in made)


@pytest.mark.parametrize(("low", "high"), [(0, 0), (0, 1), (1, 1), (3, 3), (5, 9), (20, 30),
                                           (1, 500), (150, 160), (0, None), (40, None)])
def test_free_text_length_is_counted_in_code_points(low: int, high: int | None) -> None:
    schema: dict[str, Any] = {"type": "string", "minLength": low}
    if high is not None:
        schema["maxLength"] = high
    made = instances(schema)
    assert all(low <= len(value) <= (high if high is not None else 10**6) for value in made)
    lengths = {len(value) for value in made}
    if high is not None and high > low:  # the shortest (one word) and the longest (word cut)
        assert min(lengths) <= low + 9 and max(lengths) >= high - 9


def test_free_text_is_english_prose_cut_at_word_boundaries() -> None:
    made = instances({"type": "string", "minLength": 1, "maxLength": 280})
    for text in made:
        assert not re.search(r"[#@/]|https?|www", text) and text.isascii()
        assert {word.strip(".").lower() for word in text.split()} <= VOCABULARY
        assert language_problem(text, "English") is None


def test_free_text_varies_enough_to_pass_near_duplicate_checks() -> None:
    made = [text for text in instances({"type": "string", "minLength": 100, "maxLength": 280},
                                       range(60))]
    assert max(jaccard(a, b) for a, b in itertools.combinations(made, 2)) < 0.25


def test_number_bounds_inclusive_and_exclusive() -> None:
    inclusive = instances({"type": "number", "minimum": 0.2, "maximum": 20})
    assert min(inclusive) == 0.2 and max(inclusive) == 20
    exclusive = instances({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1})
    assert all(0 < value < 1 for value in exclusive)
    integers = instances({"type": "integer", "exclusiveMinimum": 1, "maximum": 4})
    assert set(integers) == {2, 3, 4}
    assert all(type(value) is int for value in integers)


def test_item_counts_span_min_to_max_and_min_equal_max_is_exact() -> None:
    lengths = {len(value) for value in instances({"type": "array", "items": {"type": "integer"},
                                                  "minItems": 2, "maxItems": 5})}
    assert lengths == {2, 3, 4, 5}
    exact = instances({"type": "array", "items": {"type": "string"}, "minItems": 7,
                       "maxItems": 7})
    assert all(len(value) == 7 for value in exact)


def test_arrays_are_often_exactly_the_minimum() -> None:
    made = instances({"type": "array", "items": {"type": "null"}, "minItems": 1, "maxItems": 8})
    assert sum(len(value) == 1 for value in made) > len(made) // 5


def test_unique_items() -> None:
    made = instances({"type": "array", "uniqueItems": True, "minItems": 3, "maxItems": 3,
                      "items": {"enum": ["a", "b", "c"]}})
    assert all(sorted(value) == ["a", "b", "c"] for value in made)
    assert len({tuple(value) for value in made}) > 1


def test_prefix_items_with_const_per_position_give_exactly_those_values_in_order() -> None:
    slots = ["20261201-0811", "20261201-1936", "20261202-0805"]
    schema = {"type": "array", "minItems": 3, "items": False, "prefixItems": [
        {"type": "object", "required": ["slot_id"], "additionalProperties": False,
         "properties": {"slot_id": {"const": slot}}} for slot in slots]}
    assert all([item["slot_id"] for item in value] == slots for value in instances(schema))


def test_prefix_items_without_min_items_may_stop_early_and_never_run_past() -> None:
    schema = {"type": "array", "prefixItems": [{"const": 1}, {"const": 2}], "items": False}
    made = instances(schema)
    assert {tuple(value) for value in made} == {(), (1,), (1, 2)}


def test_prefix_items_then_items() -> None:
    schema = {"type": "array", "prefixItems": [{"const": "head"}], "minItems": 3,
              "maxItems": 3, "items": {"type": "integer"}}
    for value in instances(schema):
        assert value[0] == "head" and all(type(item) is int for item in value[1:])


def test_formats() -> None:
    for value in instances({"type": "string", "format": "date"}):
        date.fromisoformat(value)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
    for value in instances({"type": "string", "format": "date-time"}):
        assert datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None
    for value in instances({"type": "string", "format": "time"}):
        assert time.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def test_annotations_are_allowed() -> None:
    schema = {"type": "string", "title": "T", "description": "d", "default": "x",
              "examples": ["y"], "$comment": "c"}
    assert all(isinstance(value, str) for value in instances(schema, range(5)))


@pytest.mark.parametrize("schema", [
    {"not": {"type": "string"}},
    {"type": "object", "patternProperties": {"^x": {"type": "integer"}}},
    {"type": "integer", "multipleOf": 3},
    {"type": "object", "minProperties": 1},
    {"allOf": [{"type": "string"}]},
    {"if": {"type": "string"}, "then": {"maxLength": 2}},
    {"type": "array", "contains": {"const": 1}},
    {"type": "string", "format": "email"},
    {"type": "object", "properties": {"a": {"type": "string", "x-rule": True}}},
])
def test_a_constraint_it_cannot_honour_raises(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchemaError):
        instance_for(schema, random.Random(0))


def test_an_instance_its_schema_rejects_is_never_returned(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema_instances, "prose", lambda low, high, rng: "far too long")
    with pytest.raises(InvalidInstanceError, match="too long"):
        instance_for({"type": "string", "maxLength": 3}, random.Random(0))


def test_the_server_refuses_requests_without_a_schema_and_varies_its_replies() -> None:
    responder = SchemaResponder(seed=3)
    assert responder({"messages": []}).status == 400
    assert "json_schema" in responder.refused[0]
    body = {"messages": [], "response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "string", "minLength": 30, "maxLength": 80}}}}
    first, second = responder(body).content, responder(body).content
    assert first != second
    again = SchemaResponder(seed=3)
    assert [again(body).content, again(body).content] == [first, second]


def test_the_server_stops_at_max_tokens_like_a_backend() -> None:
    schema = {"type": "string", "minLength": 200, "maxLength": 200}
    body = {"messages": [], "max_tokens": 10, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
    cut = SchemaResponder(seed=0)(body)
    assert cut.finish_reason == "length" and len(cut.content or "") == 10 * CHARS_PER_TOKEN
    whole = SchemaResponder(seed=0)({**body, "max_tokens": 100})
    assert whole.finish_reason == "stop" and len(json.loads(whole.content or "")) == 200


def _models() -> list[tuple[str, type[BaseModel]]]:
    return [(stage.name, stage.output_model) for stage in STAGES] + [
        ("calendar", MonthPlan), ("tweets", TweetBatch)]


def _stage_context(stage: Stage, apparent_age: int | None) -> StageContext:
    return stage.context(PersonaInput(image_name="ava.png", visual_facts=""),
                         supplied={"apparent_age": apparent_age})


def _sent_schema(stage: Stage, ctx: StageContext) -> dict[str, Any]:
    """The schema a stage's request carries (its own adjustment applied, as the pipeline does)."""
    schema = json_schema_for(stage.output_model)
    return stage.adjust_schema(schema, ctx) if stage.adjust_schema else schema


@pytest.mark.parametrize(("name", "model"), _models(), ids=[name for name, _ in _models()])
def test_every_schema_the_code_sends_gets_valid_instances(name: str,
                                                          model: type[BaseModel]) -> None:
    assert len(instances(json_schema_for(model), range(20))) == 20


@pytest.mark.parametrize(("name", "model"), _models(), ids=[name for name, _ in _models()])
def test_the_model_accepts_every_instance_its_schema_allows(name: str,
                                                            model: type[BaseModel]) -> None:
    for value in instances(json_schema_for(model), range(20)):
        model.model_validate(value)


@pytest.mark.parametrize("apparent_age", [None, 19, 45])
@pytest.mark.parametrize("stage", STAGES, ids=[stage.name for stage in STAGES])
def test_each_stage_accepts_every_reply_the_schema_it_sends_allows(
        stage: Stage, apparent_age: int | None) -> None:
    ctx = _stage_context(stage, apparent_age)
    for value in instances(_sent_schema(stage, ctx), range(20)):
        stage.output_model.model_validate(value, context=stage.validation_context(ctx))


@pytest.mark.parametrize(("name", "model"), _models(), ids=[name for name, _ in _models()])
def test_without_the_self_check_the_instances_are_the_same(name: str,
                                                           model: type[BaseModel]) -> None:
    """bench/simserver.py draws with check=False: the same replies as the suite's servers."""
    schema = json_schema_for(model)
    for seed in range(20):
        assert instance_for(schema, random.Random(seed), check=False) == instance_for(
            schema, random.Random(seed))


@pytest.mark.parametrize("schema", [
    {"enum": ["a", 1, 1.0, 2.5, True, None], "type": "integer"},
    {"enum": ["a", 1, 2.5, True, None], "type": ["string", "null"]},
    {"enum": ["a", "bb", "ccc"], "maxLength": 2},
    {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "integer", "maximum": 3}]},
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.001},
])
def test_without_the_self_check_choices_still_follow_every_keyword(
        schema: dict[str, Any]) -> None:
    """Enum members, oneOf branches and rounded numbers are still chosen under every keyword."""
    checked, unchecked = instances(schema, range(50)), [
        instance_for(schema, random.Random(seed), check=False) for seed in range(50)]
    assert unchecked == checked


def test_without_the_self_check_an_unhonoured_keyword_still_raises() -> None:
    with pytest.raises(UnsupportedSchemaError):
        instance_for({"type": "integer", "multipleOf": 3}, random.Random(0), check=False)
