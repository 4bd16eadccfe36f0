"""A responder for FakeOpenAIServer that answers like a schema-following backend.

Every chat request gets a fresh random instance of exactly the schema it sent in
`response_format.json_schema.schema` (tests/schema_instances.py): what OpenAI strict outputs,
vLLM guided decoding or a llama.cpp grammar may write. The reply's rng comes from the seed, the
request's content and how often that same request came before, so replies differ between calls
while a run is reproducible whatever order the server's threads serve requests in. Like a real
backend it stops at `max_tokens` (finish_reason "length"), counting an optimistic
CHARS_PER_TOKEN: a cut reply means the request's max_tokens is too small for its own schema.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter
from typing import Any

from openai_server import Reply
from schema_instances import InvalidInstanceError, UnsupportedSchemaError, instance_for

CHARS_PER_TOKEN = 4  # English prose in JSON; the server's usage counts tokens the same way


def _error(status: int, message: str) -> Reply:
    return Reply(status=status, error_body={"error": {
        "message": message, "type": "invalid_request_error", "param": "response_format"}})


def requested_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a chat request asks the reply to follow, if it asks for one."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


class SchemaResponder:
    """Answers each request with `json.dumps(instance_for(schema, rng))`.

    A request without a json_schema response_format, or with a schema the generator cannot
    honour, gets a 400; an instance the generator got wrong (its bug) a 500. Both are kept in
    `refused`, which a test should find empty.
    """

    def __init__(self, seed: int, *, check: bool = True) -> None:
        self.seed = seed
        self.check = check  # the generator's self-check of every instance (drawn_reply)
        self.refused: list[str] = []  # the 400s' messages, for assertions
        self._asked: Counter[str] = Counter()
        self._lock = threading.Lock()

    def rng_key(self, body: dict[str, Any]) -> str:
        """The reply rng's seed: seed + request content + how often this request came before."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()
        with self._lock:
            repeat = self._asked[digest]
            self._asked[digest] += 1
        return f"{self.seed}:{digest}:{repeat}"

    def __call__(self, body: dict[str, Any]) -> Reply:
        """One reply for one chat request."""
        reply = drawn_reply(body, self.rng_key(body), check=self.check)
        if reply.status in (400, 500) and reply.error_body:
            with self._lock:
                self.refused.append(reply.error_body["error"]["message"])
        return reply


def drawn_reply(body: dict[str, Any], rng_key: str, *, check: bool = True) -> Reply:
    """The reply to `body` drawn with the rng seeded by `rng_key` (a pure function of the two).
    `check=False`: the same reply without the generator's self-check (`instance_for`), for
    bench/simserver.py."""
    schema = requested_schema(body)
    if schema is None:
        return _error(400, "this server answers only requests with response_format "
                      "{'type': 'json_schema', 'json_schema': {'schema': {...}}}; got "
                      f"{json.dumps(body.get('response_format'))[:200]}")
    try:
        instance = instance_for(schema, random.Random(rng_key), check=check)
    except UnsupportedSchemaError as exc:
        return _error(400, f"unsupported json_schema: {exc}")
    except InvalidInstanceError as exc:
        return _error(500, f"schema_instances bug: {exc}")
    return _within_max_tokens(json.dumps(instance, ensure_ascii=False), body)


def _within_max_tokens(text: str, body: dict[str, Any]) -> Reply:
    """The reply, cut where a backend would stop writing it."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and len(text) > limit * CHARS_PER_TOKEN:
        return Reply(text[: limit * CHARS_PER_TOKEN], finish_reason="length")
    return Reply(text)


def schema_responder(seed: int, *, check: bool = True) -> SchemaResponder:
    """A Responder answering every request with a random instance of the schema it sent."""
    return SchemaResponder(seed, check=check)
