"""Structured calls: a Pydantic model is the contract; invalid replies are re-asked with errors."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Generic, TypeVar

import json_repair
from pydantic import BaseModel, ValidationError

from ..errors import LLMError, StructuredOutputError
from ..ledger import CallRecord, Ledger
from .client import ChatRequest, Completion
from .pool import CpuTurns, LLMPool

OutputT = TypeVar("OutputT", bound=BaseModel)
_CODE_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
MAX_UNBOUNDED_CHARS = 2000
NUMBER_CHARS = 20
# Looping small models emit odd fragments (~2 chars a token); real prose runs near 4.
WORST_CHARS_PER_TOKEN = 2
TOKEN_MARGIN = 64
# Keywords whose value maps names (data) to subschemas: a name there is never a keyword.
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_DATA_URL = re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+")


@dataclass(frozen=True)
class CallTags:
    """Who a call is for, as the ledger records it."""

    run_id: str
    persona: str
    stage: str


@dataclass
class StructuredResult(Generic[OutputT]):
    """A validated output and what it cost to get."""

    output: OutputT
    from_cache: bool
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""


@cache
def json_schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with `$ref`s inlined and titles dropped (computed once per model;
    callers build new dicts rather than change it).

    Inlined because some constrained decoders (llama.cpp grammars, older vLLM) handle `$defs`
    poorly; titles dropped because they only cost prompt tokens.
    """
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        """Walk schema nodes: only a node's own `title` annotation goes, never a property named
        `title` (the keys of `properties` are data, not keywords)."""
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return resolve(copy.deepcopy(definitions[name]))
        resolved_node = {}
        for key, value in node.items():
            if key == "title":
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                resolved_node[key] = {name: resolve(sub) for name, sub in value.items()}
            else:
                resolved_node[key] = resolve(value)
        return resolved_node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def schema_max_chars(schema: dict[str, Any]) -> int:
    """The longest JSON text the schema allows (strings at maxLength, lists at maxItems).

    Unbounded parts count as MAX_UNBOUNDED_CHARS; every stage's schema is fully bounded.
    """
    kind = schema.get("type")
    if "const" in schema:
        return len(json.dumps(schema["const"]))
    if "enum" in schema:
        return max(len(json.dumps(value)) for value in schema["enum"])
    if "anyOf" in schema:
        return max(schema_max_chars(option) for option in schema["anyOf"])
    if kind == "string":
        return int(schema.get("maxLength", MAX_UNBOUNDED_CHARS)) + 2
    if kind == "array":
        positions = [schema_max_chars(position) for position in schema.get("prefixItems", [])]
        rest = max(0, int(schema.get("maxItems", 10)) - len(positions))
        item = schema_max_chars(schema.get("items", {}))
        return 2 + sum(chars + 2 for chars in positions) + rest * (item + 2)
    if kind == "object":
        properties = schema.get("properties", {})
        return 2 + sum(len(key) + 5 + schema_max_chars(value) for key, value in properties.items())
    return NUMBER_CHARS


def max_output_tokens(schema: dict[str, Any]) -> int:
    """A max_tokens that lets any reply the schema allows finish, so a grammar never truncates."""
    return schema_max_chars(schema) // WORST_CHARS_PER_TOKEN + TOKEN_MARGIN


def parse_json_leniently(text: str) -> Any:
    """Parse a reply as JSON: strip code fences, allow raw control characters, repair trivia.

    Raises ValueError when nothing JSON-like can be recovered.
    """
    fenced = _CODE_FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    try:
        return json.loads(body, strict=False)
    except json.JSONDecodeError:
        pass
    repaired = json_repair.repair_json(body, return_objects=True, skip_json_loads=True)
    if not isinstance(repaired, dict | list) or not repaired:
        raise ValueError("the reply is not JSON")
    return repaired


def validate_reply(
    output_model: type[OutputT], text: str, context: dict[str, Any] | None
) -> OutputT:
    """Parse and validate a reply; raise ValueError with a message fit to send back to the model."""
    data = parse_json_leniently(text)
    try:
        return output_model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ValueError(_describe_errors(exc)) from exc


def _describe_errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(root)"
        lines.append(f"- {where}: {error['msg']}")
    return "\n".join(lines)


def loggable_messages(messages: list[dict[str, Any]]) -> str:
    """Messages as JSON for the ledger, with inline images replaced by their hash."""
    text = json.dumps(messages, ensure_ascii=False)

    def digest(match: re.Match[str]) -> str:
        return f"<image sha256={hashlib.sha256(match.group(0).encode()).hexdigest()[:16]}>"

    return _DATA_URL.sub(digest, text)


def reask_messages(
    messages: list[dict[str, Any]], reply: str, error: str, truncated: bool
) -> list[dict[str, Any]]:
    """The conversation plus the invalid reply and the exact error, asking for a corrected reply."""
    hint = " Your reply was cut off: be more concise." if truncated else ""
    feedback = (
        "Your reply does not match the required JSON schema:\n"
        f"{error}\n{hint}Reply again with only the corrected JSON object."
    )
    return [
        *messages,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": feedback},
    ]


async def call_structured(
    output_model: type[OutputT],
    request: ChatRequest,
    *,
    pool: LLMPool,
    ledger: Ledger,
    tags: CallTags,
    max_reasks: int,
    context: dict[str, Any] | None = None,
    priority: float = 0.0,
    turns: CpuTurns | None = None,
) -> StructuredResult[OutputT]:
    """Get a validated `output_model` for request: from the cache, or by calling (≤ 1 + max_reasks).

    Every call is recorded in the ledger; the validated output is cached under the fingerprint of
    the original request, so the same input is never paid for twice.
    """
    # With `turns`, each piece of this call's own CPU work waits for a turn of the loop
    # (pool.CpuTurns), so the transport's work for the other calls in flight goes first.
    if turns is not None:
        await turns.take()
    fingerprint = request.fingerprint()
    cached = ledger.cached_output(fingerprint)
    if cached is not None:
        output_json, model = cached
        try:
            output = validate_reply(output_model, output_json, context)
            return StructuredResult(output, from_cache=True, model=model)
        except ValueError:
            pass  # the model changed since it was cached; ask again
    result: StructuredResult[OutputT] | None = None
    current = request
    last_error, last_reply = "", ""
    calls = prompt_tokens = completion_tokens = 0
    for _ in range(1 + max_reasks):
        completion = await _recorded_complete(current, fingerprint, pool, ledger, tags, priority)
        # The reply is paid for: it is validated and logged even if the run is stopped while it
        # waits for its turns, so a rerun never pays for it again; the stop is raised after.
        stopping = await turns.take_deferring_cancel() if turns is not None else None
        calls += 1
        prompt_tokens += completion.prompt_tokens
        completion_tokens += completion.completion_tokens
        try:
            output = validate_reply(output_model, completion.text, context)
        except ValueError as exc:
            last_error, last_reply = str(exc), completion.text
            ledger.record_call(
                _call_record(tags, current, fingerprint, completion, "invalid", last_error))
            if stopping is not None:
                raise stopping from None  # the stop, not the invalid reply (it is logged)
            truncated = completion.finish_reason == "length"
            current = current.with_messages(
                reask_messages(current.messages, completion.text, last_error, truncated)
            )
            continue
        if turns is not None and stopping is None:  # logging it (at once when stopping)
            stopping = await turns.take_deferring_cancel()
        ledger.record_cached_call(
            _call_record(tags, current, fingerprint, completion, "ok", None),
            output.model_dump_json())
        if stopping is not None:
            raise stopping
        result = StructuredResult(
            output, False, calls, prompt_tokens, completion_tokens, completion.model
        )
        break
    if result is None:
        raise StructuredOutputError(
            tags.stage, attempts=calls, last_error=last_error, last_reply=last_reply
        )
    return result


async def _recorded_complete(
    request: ChatRequest, fingerprint: str, pool: LLMPool, ledger: Ledger, tags: CallTags,
    priority: float,
) -> Completion:
    try:
        return await pool.complete(request, priority=priority)
    except LLMError as exc:
        attempts = getattr(exc, "attempts", 1)
        ledger.record_call(
            CallRecord(
                run_id=tags.run_id, persona=tags.persona, stage=tags.stage, model=request.model,
                fingerprint=fingerprint, request_json=loggable_messages(request.messages),
                status="error", attempts=attempts, error=str(exc),
            )
        )
        raise


def _call_record(
    tags: CallTags, request: ChatRequest, fingerprint: str, completion: Completion, status: str,
    error: str | None,
) -> CallRecord:
    return CallRecord(
        run_id=tags.run_id, persona=tags.persona, stage=tags.stage, model=completion.model,
        fingerprint=fingerprint, request_json=loggable_messages(request.messages),
        status=status, response_text=completion.text,
        prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
        cached_tokens=completion.cached_tokens, latency_ms=round(completion.latency_s * 1000),
        attempts=completion.attempts, error=error,
    )
