"""ElizaOS character files, as we export them.

Target: the ElizaOS v1 character schema (`@elizaos/core` 1.7.2 `characterSchema`, `.strict()`:
no unknown keys; eliza_schema.py mirrors it for `validate`), plus the older characterfile
schema's minimum-item rules (bio a list, messageExamples, postExamples, topics, adjectives and
each style list non-empty), so one file loads in both. v1 has no `lore` and its `knowledge`
holds file paths, so lorebook facts become extra bio lines.

`plugins` lists what a working agent loads: ElizaOS 1.7.2's runtime refuses to start without
the SQL plugin's database adapter, `@elizaos/plugin-bootstrap` brings message handling, and a
model provider plugin answers; the default provider is the OpenAI plugin, which speaks to any
OpenAI-compatible endpoint (`OPENAI_BASE_URL`), like this project.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..stages import authenticity as authenticity_stage
from ..stages import core as core_stage
from ..stages import examples as examples_stage
from ..stages import strategy as strategy_stage
from ..store import PersonaExtension, extension_of
from .v2 import CharacterCardV2

USER_PLACEHOLDER = "{{name1}}"
MAX_POST_EXAMPLES = 20
SQL_PLUGIN = "@elizaos/plugin-sql"
BOOTSTRAP_PLUGIN = "@elizaos/plugin-bootstrap"
# The model providers @elizaos/core 1.7.2's buildCharacterPlugins() chooses from.
MODEL_PLUGINS = ("@elizaos/plugin-openai", "@elizaos/plugin-anthropic",
                 "@elizaos/plugin-openrouter", "@elizaos/plugin-google-genai",
                 "@elizaos/plugin-ollama")
# In buildCharacterPlugins()'s order: database, model provider, bootstrap.
DEFAULT_ELIZA_PLUGINS = (SQL_PLUGIN, "@elizaos/plugin-openai", BOOTSTRAP_PLUGIN)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageContent(_Strict):
    """A message's content (ElizaOS allows more keys; we write only text)."""

    text: str


class MessageExample(_Strict):
    """One line of an example conversation."""

    name: str
    content: MessageContent


class Style(_Strict):
    """How the character writes everywhere, in chat and in posts."""

    all: list[str] = Field(min_length=1)
    chat: list[str] = Field(min_length=1)
    post: list[str] = Field(min_length=1)


class ElizaCharacter(_Strict):
    """An ElizaOS v1 character (strict) meeting characterfile's minimum-item rules."""

    name: str = Field(min_length=1)
    username: str | None = None
    system: str | None = None
    bio: list[str] = Field(min_length=1)
    messageExamples: list[list[MessageExample]] = Field(min_length=1)  # noqa: N815  # ElizaOS key
    postExamples: list[str] = Field(min_length=1)  # noqa: N815  # ElizaOS key
    topics: list[str] = Field(min_length=1)
    adjectives: list[str] = Field(min_length=1)
    plugins: list[str] = Field(default_factory=lambda: list(DEFAULT_ELIZA_PLUGINS))
    style: Style


def _split(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\n]", text) if part.strip()]


def _mes_example_lines(mes_example: str) -> list[str]:
    lines = []
    for line in mes_example.splitlines():
        _, sep, said = line.partition(":")
        if sep and line.lstrip().startswith("{{char}}") and said.strip():
            lines.append(said.strip())
    return lines


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _text(section: dict[str, Any], key: str) -> str:
    value = section.get(key)
    return value if isinstance(value, str) else ""


def _texts(section: dict[str, Any], key: str, field: str | None = None) -> list[str]:
    """The strings of section[key], or of each item's `field` when the items are objects."""
    items = section.get(key)
    values = [_text(item, field) if field and isinstance(item, dict) else item
              for item in items] if isinstance(items, list) else []
    return [value for value in values if isinstance(value, str) and value]


def to_eliza(card: CharacterCardV2, extra_posts: list[str] | None = None,
             plugins: tuple[str, ...] = DEFAULT_ELIZA_PLUGINS) -> ElizaCharacter:
    """An ElizaOS character from any V2 card; our own cards' stage outputs make it richer."""
    data = card.data
    ours = extension_of(data.extensions) or PersonaExtension()
    core = ours.stage_output(core_stage.NAME) or {}
    strategy = ours.stage_output(strategy_stage.NAME) or {}
    habits = ours.stage_output(authenticity_stage.NAME) or {}
    bio = _unique([_text(core, "bio"), _text(core, "backstory") or data.description,
                   *(entry.content for entry in data.character_book.entries)])
    posts = _unique([*_texts(ours.stage_output(examples_stage.NAME) or {}, "tweets", "text"),
                     *(extra_posts or []), *_mes_example_lines(data.mes_example)])
    voice = _text(core, "voice") or data.personality
    conversation = [
        MessageExample(name=USER_PLACEHOLDER, content=MessageContent(text="hey, who are you?")),
        MessageExample(name=data.name, content=MessageContent(text=data.first_mes or voice)),
    ]
    return ElizaCharacter(
        name=data.name,
        username=_text(core, "handle") or None,
        system=data.system_prompt or None,
        bio=bio or [data.name],
        messageExamples=[conversation],
        postExamples=posts[:MAX_POST_EXAMPLES] or [data.first_mes or data.description or data.name],
        topics=_unique([*_texts(core, "interests"), *_texts(strategy, "pillars", "name"),
                        *data.tags]) or [data.name],
        adjectives=_unique(_texts(core, "personality") or _split(data.personality))
        or ["authentic"],
        plugins=list(plugins),
        style=Style(
            all=_unique([voice, *_texts(habits, "writing_habits")])
            or ["stay in character"],
            chat=["answer like a person, not an assistant", f"sound like {data.name}"],
            post=_unique([_text(strategy, "tone"), _emoji_rule(strategy),
                          "stay under 280 characters"]),
        ),
    )


def _emoji_rule(strategy: dict[str, Any]) -> str:
    emoji = _text(strategy, "emoji_use")
    return f"emoji use: {emoji}" if emoji else ""
