"""Random valid instances of a JSON schema: what a schema-following backend may answer.

OpenAI strict outputs, vLLM guided decoding and llama.cpp grammars write *any* instance of the
schema they are sent, no more and no less; a test server that answers with `instance_for` shows
whether the code accepts everything its schema allows. Every choice the schema leaves open is
drawn from the rng: array lengths from minItems to maxItems (often exactly the minimum, as a
terse model writes), optional properties present or not, enum members, anyOf/oneOf branches.

Honoured: type (one or a list), properties, required, additionalProperties (nothing beyond
`properties` is ever added), enum, const, anyOf, oneOf, $ref into $defs/definitions (any local
JSON pointer), pattern, minLength/maxLength (code points), minimum/maximum and their exclusive
forms, minItems/maxItems, uniqueItems, items, prefixItems (2020-12), format date, date-time and
time. Annotations (description, title, default, examples, …) are ignored. Any other keyword
raises UnsupportedSchemaError: a generator that skipped a rule would hide the very bugs it is
for. Each instance is checked with jsonschema's Draft202012Validator (formats asserted) before
it is returned; a failure raises InvalidInstanceError, a bug of this generator. Strings come
from schema_strings (English prose for free text; see its docstring for the regex choice).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match

from schema_strings import (
    SHORTEST_SHARE,
    UnsupportedSchemaError,
    formatted,
    is_rfc3339_date,
    is_rfc3339_date_time,
    is_rfc3339_time,
    matching,
    prose,
)

__all__ = ["InvalidInstanceError", "UnsupportedSchemaError", "instance_for"]

ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "$comment", "$schema", "$id", "$anchor",
    "deprecated", "readOnly", "writeOnly", "$defs", "definitions",
})
SUPPORTED = frozenset({
    "type", "properties", "required", "additionalProperties", "enum", "const", "anyOf", "oneOf",
    "$ref", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minItems", "maxItems", "uniqueItems", "items", "prefixItems", "format",
})
# Keywords that imply a type when a node has no `type`.
TYPE_HINTS: dict[str, frozenset[str]] = {
    "object": frozenset({"properties", "required", "additionalProperties"}),
    "array": frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems"}),
    "string": frozenset({"pattern", "minLength", "maxLength", "format"}),
    "number": frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
}
# How two values of one keyword combine when a branch and its node both give it (both apply).
TIGHTEST: dict[str, Callable[[Any, Any], Any]] = {
    **dict.fromkeys(("minimum", "exclusiveMinimum", "minLength", "minItems"), max),
    **dict.fromkeys(("maximum", "exclusiveMaximum", "maxLength", "maxItems"), min),
    "required": lambda one, two: list(dict.fromkeys([*one, *two])),
}
ANY_TYPES = ("string", "integer", "number", "boolean", "null")
OPTIONAL_SHARE = 0.5  # how often an optional property is written
LONGEST_SHARE = 0.15
DEFAULT_EXTRA_ITEMS = 4  # an array with no maxItems gets at most minItems (or prefix) + this
DEFAULT_NUMBER_SPAN = 1000
INF = float("inf")
SOFT_DEPTH = 12  # deeper than this, only what is required (recursive schemas end)
HARD_DEPTH = 64
RETRIES = 32  # for oneOf and uniqueItems
FORMAT_CHECKER = FormatChecker(formats=())
FORMAT_CHECKER.checks("date")(is_rfc3339_date)
FORMAT_CHECKER.checks("date-time")(is_rfc3339_date_time)
FORMAT_CHECKER.checks("time")(is_rfc3339_time)


class InvalidInstanceError(AssertionError):
    """The generator produced an instance its own schema rejects (a bug here, not in the code
    under test)."""


def instance_for(schema: dict[str, Any], rng: random.Random, *, check: bool = True) -> Any:
    """A random instance of `schema`, validated with Draft202012Validator before it is returned.

    Raises UnsupportedSchemaError for a keyword it cannot honour, InvalidInstanceError if the
    instance does not validate. `check=False` draws the very same instance without that
    self-check of the generator (and without checking the schema itself against the 2020-12
    meta-schema): a schema seen for the first time costs a few ms to check and every instance
    ~0.2 ms to validate, which a load generator drawing hundreds a second on the machine it
    measures cannot spend (bench/simserver.py). The suite's servers keep it on.
    """
    schema_json = json.dumps(schema, sort_keys=True)
    if check:
        _validator(schema_json)  # the schema itself checked first (meta-schema, keywords)
    else:
        _checked_keywords(schema_json)
    validator = partial(_validator if check else _unchecked_validator, schema_json)
    value = _Generator(schema, validator, rng).value(schema, "#", 0)
    if not check:
        return value
    error = best_match(validator().iter_errors(value))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        raise InvalidInstanceError(f"generated instance invalid at {where}: {error.message}")
    return value


@lru_cache(maxsize=512)
def _validator(schema_json: str) -> Draft202012Validator:
    """A checked schema's validator: a valid 2020-12 schema using only supported keywords."""
    schema = json.loads(schema_json)
    Draft202012Validator.check_schema(schema)
    _check_keywords(schema, "#")
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


@lru_cache(maxsize=512)
def _checked_keywords(schema_json: str) -> None:
    """Raise UnsupportedSchemaError as `_validator` does, without the meta-schema check."""
    _check_keywords(json.loads(schema_json), "#")


@lru_cache(maxsize=512)
def _unchecked_validator(schema_json: str) -> Draft202012Validator:
    """The validator the generator's own choices need (oneOf, enum members under other
    keywords, rounded numbers), without the meta-schema check."""
    return Draft202012Validator(json.loads(schema_json), format_checker=FORMAT_CHECKER)


def _check_keywords(node: Any, path: str) -> None:
    """Raise for any keyword anywhere in the schema that is not honoured (even in a branch or
    an optional property this instance may not visit)."""
    if not isinstance(node, dict):
        return
    unknown = sorted(set(node) - SUPPORTED - ANNOTATIONS)
    if unknown:
        raise UnsupportedSchemaError(
            f"{path}: keyword(s) {unknown} are not supported by the instance generator")
    if "anyOf" in node and "oneOf" in node:
        raise UnsupportedSchemaError(f"{path}: anyOf together with oneOf is not supported")
    for key in ("properties", "$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            _check_keywords(sub, f"{path}/{key}/{name}")
    for key in ("prefixItems", "anyOf", "oneOf"):
        for index, sub in enumerate(node.get(key) or []):
            _check_keywords(sub, f"{path}/{key}/{index}")
    for key in ("items", "additionalProperties"):
        _check_keywords(node.get(key), f"{path}/{key}")


def _unique_key(value: Any) -> str:
    """Equal under JSON Schema's uniqueItems ⇔ equal key (1 == 1.0; True is not 1)."""

    def normal(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {key: normal(sub) for key, sub in item.items()}
        if isinstance(item, list):
            return [normal(sub) for sub in item]
        return item

    return json.dumps(normal(value), sort_keys=True)


class _Generator:
    """One instance's walk over a schema, resolving refs against the root."""

    def __init__(self, root: dict[str, Any], validator: Callable[[], Draft202012Validator],
                 rng: random.Random) -> None:
        # Built on first use: most instances need no validation while they are drawn.
        self.root, self.validator, self.rng = root, validator, rng
        self._types: dict[str, Callable[[dict[str, Any], str, int], Any]] = {
            "object": self._object, "array": self._array, "string": self._string,
            "integer": self._integer, "number": self._number,
            "boolean": lambda node, path, depth: self.rng.random() < 0.5,
            "null": lambda node, path, depth: None,
        }

    def value(self, node: Any, path: str, depth: int) -> Any:
        """A value for one schema node."""
        if depth > HARD_DEPTH:
            raise UnsupportedSchemaError(f"{path}: the schema recurses without end")
        if node is True or node == {}:
            node = {"type": self.rng.choice(ANY_TYPES)}
        if not isinstance(node, dict):
            raise UnsupportedSchemaError(f"{path}: schema {node!r} admits no value")
        if "$ref" in node:
            return self.value(self._referenced(node, path), f"{path}/$ref", depth + 1)
        if "const" in node:
            return copy.deepcopy(node["const"])
        if "enum" in node:
            return self._enum_member(node, path)
        for combinator in ("oneOf", "anyOf"):
            if combinator in node:
                return self._branch(node, combinator, path, depth)
        kind = self._type(node, path)
        return self._types[kind](node, path, depth)

    def _valid(self, node: dict[str, Any], value: Any) -> bool:
        return bool(self.validator().evolve(schema=node).is_valid(value))

    def _referenced(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        """The $ref target merged with the node's other keywords (2020-12 applies both)."""
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise UnsupportedSchemaError(f"{path}: only local $refs are supported, got {ref!r}")
        target: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or key not in target:
                raise UnsupportedSchemaError(f"{path}: $ref {ref!r} points nowhere")
            target = target[key]
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _merged(target, rest, path)

    def _enum_member(self, node: dict[str, Any], path: str) -> Any:
        if node.keys() - ANNOTATIONS <= {"enum", "type"}:  # the common case, without jsonschema
            members = [m for m in node["enum"] if _of_type(m, node.get("type"))]
        else:
            members = [m for m in node["enum"] if self._valid(node, m)]
        if not members:
            raise UnsupportedSchemaError(f"{path}: no enum member fits the other keywords")
        return copy.deepcopy(self.rng.choice(members))

    def _branch(self, node: dict[str, Any], combinator: str, path: str, depth: int) -> Any:
        branches = node[combinator]
        rest = {key: value for key, value in node.items() if key != combinator}
        for _ in range(RETRIES):
            index = self.rng.randrange(len(branches))
            merged = _merged(branches[index], rest, f"{path}/{combinator}/{index}")
            value = self.value(merged, f"{path}/{combinator}/{index}", depth + 1)
            if combinator == "anyOf" or self._valid(node, value):
                return value
        raise UnsupportedSchemaError(f"{path}: no value matching exactly one oneOf branch found")

    def _type(self, node: dict[str, Any], path: str) -> str:
        kind = node.get("type")
        if isinstance(kind, list):
            if not kind:
                raise UnsupportedSchemaError(f"{path}: an empty type list admits no value")
            kind = self.rng.choice(kind)
        if kind is None:
            hinted = [name for name, keys in TYPE_HINTS.items() if keys & node.keys()]
            kind = self.rng.choice(hinted or list(ANY_TYPES))
        if kind not in self._types:
            raise UnsupportedSchemaError(f"{path}: unknown type {kind!r}")
        return str(kind)

    def _count(self, low: int, high: int, depth: int) -> int:
        roll = self.rng.random()
        if depth > SOFT_DEPTH or roll < SHORTEST_SHARE * 2:
            return low
        if roll < SHORTEST_SHARE * 2 + LONGEST_SHARE:
            return high
        return self.rng.randint(low, high)

    def _object(self, node: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = node.get("properties", {})
        required: list[str] = node.get("required", [])
        extra = node.get("additionalProperties", True)
        unlisted = [name for name in required if name not in properties]
        if unlisted and extra is False:
            raise UnsupportedSchemaError(
                f"{path}: {unlisted} required but additionalProperties is false")
        result = {}
        for name, sub in properties.items():
            wanted = name in required or (
                depth <= SOFT_DEPTH and self.rng.random() < OPTIONAL_SHARE)
            if wanted:
                result[name] = self.value(sub, f"{path}/properties/{name}", depth + 1)
        for name in unlisted:
            result[name] = self.value(extra if isinstance(extra, dict) else True,
                                      f"{path}/additionalProperties", depth + 1)
        return result

    def _array(self, node: dict[str, Any], path: str, depth: int) -> list[Any]:
        prefix: list[Any] = node.get("prefixItems", [])
        items = node.get("items", True)
        low = node.get("minItems", 0)
        if items is False:
            high = min(node.get("maxItems", len(prefix)), len(prefix))
        else:
            high = node.get("maxItems", max(low, len(prefix)) + DEFAULT_EXTRA_ITEMS)
        if low > high:
            raise UnsupportedSchemaError(f"{path}: minItems {low} > the {high} items allowed")
        result: list[Any] = []
        seen: set[str] = set()
        for index in range(self._count(low, high, depth)):
            sub = prefix[index] if index < len(prefix) else items
            where = f"{path}/prefixItems/{index}" if index < len(prefix) else f"{path}/items"
            item = self._item(sub, where, depth, seen if node.get("uniqueItems") else None)
            if item is _NO_ITEM:
                if index < low:
                    raise UnsupportedSchemaError(f"{path}: cannot find {low} unique items")
                break
            result.append(item)
        return result

    def _item(self, sub: Any, where: str, depth: int, seen: set[str] | None) -> Any:
        """One array item; with `seen`, one unlike every earlier item (else _NO_ITEM)."""
        for _ in range(RETRIES if seen is not None else 1):
            item = self.value(sub, where, depth + 1)
            if seen is None:
                return item
            key = _unique_key(item)
            if key not in seen:
                seen.add(key)
                return item
        return _NO_ITEM

    def _string(self, node: dict[str, Any], path: str, depth: int) -> str:
        low, high = node.get("minLength", 0), node.get("maxLength")
        if "format" in node:
            if "pattern" in node:
                raise UnsupportedSchemaError(f"{path}: format with pattern is not supported")
            text = formatted(node["format"], self.rng)
            if len(text) < low or (high is not None and len(text) > high):
                raise UnsupportedSchemaError(f"{path}: format {node['format']!r} cannot have "
                                             f"{low}..{high} characters")
            return text
        if "pattern" in node:
            return matching(node["pattern"], low, high, self.rng)
        return prose(low, high, self.rng)

    def _integer(self, node: dict[str, Any], path: str, depth: int) -> int:
        first, last = _spread(
            max(_ceil(node.get("minimum", -INF)), _floor(node.get("exclusiveMinimum", -INF)) + 1),
            min(_floor(node.get("maximum", INF)), _ceil(node.get("exclusiveMaximum", INF)) - 1))
        if first > last:
            raise UnsupportedSchemaError(f"{path}: no integer lies between {first} and {last}")
        return self._count(int(first), int(last), depth)

    def _number(self, node: dict[str, Any], path: str, depth: int) -> float:
        low, high = _spread(max(node.get("minimum", -INF), node.get("exclusiveMinimum", -INF)),
                            min(node.get("maximum", INF), node.get("exclusiveMaximum", INF)))
        exclusive = "exclusiveMinimum" in node or "exclusiveMaximum" in node
        if low > high or (exclusive and low == high):
            raise UnsupportedSchemaError(f"{path}: no number lies between {low} and {high}")
        roll = self.rng.random()
        if not exclusive and roll < SHORTEST_SHARE:
            return float(low)
        if not exclusive and roll < SHORTEST_SHARE + LONGEST_SHARE:
            return float(high)
        value = round(self.rng.uniform(low, high), 3)
        return value if self._valid(node, value) else (low + high) / 2  # rounded onto a bound


_NO_ITEM = object()
_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "array": lambda value: isinstance(value, list),
    "object": lambda value: isinstance(value, dict),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "integer": lambda value: (isinstance(value, int) and not isinstance(value, bool))
    or (isinstance(value, float) and value.is_integer()),
}


def _of_type(value: Any, kind: Any) -> bool:
    """JSON Schema's `type` (one name or a list; absent admits anything), as jsonschema has it."""
    if kind is None:
        return True
    kinds = kind if isinstance(kind, list) else [kind]
    return any(_JSON_TYPES[name](value) for name in kinds if name in _JSON_TYPES)


def _ceil(value: float) -> float:
    return value if value in (INF, -INF) else float(-(-value // 1))


def _floor(value: float) -> float:
    return value if value in (INF, -INF) else float(value // 1)


def _spread(low: float, high: float) -> tuple[float, float]:
    """Bounds with an open end closed DEFAULT_NUMBER_SPAN away from the other (or from 0)."""
    if low == -INF and high == INF:
        return -DEFAULT_NUMBER_SPAN, DEFAULT_NUMBER_SPAN
    if low == -INF:
        return high - 2 * DEFAULT_NUMBER_SPAN, high
    if high == INF:
        return low, low + 2 * DEFAULT_NUMBER_SPAN
    return low, high


def _merged(base: Any, rest: dict[str, Any], path: str) -> Any:
    """A branch or $ref target plus the node's other constraining keywords, which must not
    clash with its own."""
    constraints = {key: value for key, value in rest.items() if key not in ANNOTATIONS}
    if not constraints:
        return base
    if not isinstance(base, dict):
        raise UnsupportedSchemaError(f"{path}: a boolean schema with sibling keywords")
    merged = {**base, **constraints}
    for key in constraints.keys() & base.keys():
        if base[key] == constraints[key]:
            continue
        if key not in TIGHTEST:
            raise UnsupportedSchemaError(f"{path}: keyword {key!r} given twice, differently")
        merged[key] = TIGHTEST[key](base[key], constraints[key])
    return merged
