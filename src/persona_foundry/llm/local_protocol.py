"""What the embedded model's parent and its server process say to each other.

A module of its own so that the parent never imports the child's module: `python -m
persona_foundry.llm.local_server` must find it not yet imported (the child still imports the
package around it, about a second at start-up, small beside loading the model).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, SecretStr, field_serializer


class LocalServerConfig(BaseModel):
    """What the parent tells the child (on stdin, so the key never shows in a process list)."""

    model_path: str
    n_ctx: int
    n_parallel: int
    n_threads: int
    api_key: SecretStr

    @field_serializer("api_key", when_used="json")
    def _reveal_key(self, key: SecretStr) -> str:
        # The JSON form travels only down the child's stdin; repr and logs still mask it.
        return key.get_secret_value()


def address_line(base_url: str) -> str:
    """The child's one line on stdout once it serves."""
    return json.dumps({"base_url": base_url})


def parse_address_line(line: bytes) -> str:
    """The base URL in the child's line; ValueError if the line is not one."""
    try:
        return str(json.loads(line)["base_url"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an address line: {line[:200]!r}") from exc
