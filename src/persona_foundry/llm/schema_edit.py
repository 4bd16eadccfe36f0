"""Per-request schema rewrites: state in the schema what this one call's validator will demand.

A schema-following backend (OpenAI strict outputs, vLLM guided decoding, llama.cpp grammars)
writes whatever the schema allows and nothing else, so every run fact a validator checks (the
days of this month, the slots of this batch, the age the photo allows) belongs in the schema
sent with the call, not only in the validator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Schema = dict[str, Any]


def with_keywords(schema: Schema, path: tuple[str, ...], **keywords: Any) -> Schema:
    """A copy of `schema` whose node at `path` has `keywords` set (the original is untouched).

    `path` names property keys, and "items" to step into an array's item schema, e.g.
    `("events", "items", "day")`.
    """
    return edit_node(schema, path, lambda node: {**node, **keywords})


def edit_node(schema: Schema, path: tuple[str, ...], change: Callable[[Schema], Schema]) -> Schema:
    """A copy of `schema` with the node at `path` replaced by `change(node)`."""
    if not path:
        return change(schema)
    head, rest = path[0], path[1:]
    if head == "items":
        return {**schema, "items": edit_node(schema["items"], rest, change)}
    properties = schema["properties"]
    return {**schema, "properties": {**properties,
                                     head: edit_node(properties[head], rest, change)}}


def one_item_each(array: Schema, items: list[Schema]) -> Schema:
    """The array schema asking for exactly `items`, position by position, and nothing else.

    `prefixItems` gives position i the schema `items[i]`, and `minItems` = `maxItems` = their
    number. No `items` beside it: llama.cpp's LLGuidance then applies `items` to every
    position and ignores `prefixItems` (seen with xllamacpp 2026.10), and with the count
    pinned no position is left for `items` to govern anyway.
    """
    kept = {key: value for key, value in array.items() if key != "items"}
    return {**kept, "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
