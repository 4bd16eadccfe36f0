"""ElizaOS character files.

Target: the ElizaOS v1 character schema (`@elizaos/core` `characterSchema`, `.strict()`: no
unknown keys), plus the older characterfile schema's minimum-item rules (bio, messageExamples,
postExamples, topics, adjectives and each style list non-empty), so one file loads in both.
v1 has no `lore` and its `knowledge` holds file paths, so lorebook facts become extra bio lines.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .merge import PF_EXTENSION
from .v2 import CharacterCardV2

USER_PLACEHOLDER = "{{name1}}"
MAX_POST_EXAMPLES = 20


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
    plugins: list[str] = Field(default_factory=list)
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


def to_eliza(card: CharacterCardV2, extra_posts: list[str] | None = None) -> ElizaCharacter:
    """An ElizaOS character from any V2 card; our own cards' stage outputs make it richer."""
    data = card.data
    ours: dict[str, Any] = data.extensions.get(PF_EXTENSION) or {}
    core = ours.get("core") or {}
    strategy = ours.get("strategy") or {}
    authenticity = ours.get("authenticity") or {}
    examples = (ours.get("example_tweets") or {}).get("tweets") or []
    bio = _unique([core.get("bio", ""), core.get("backstory", "") or data.description,
                   *(entry.content for entry in data.character_book.entries)])
    posts = _unique([*(t["text"] for t in examples), *(extra_posts or []),
                     *_mes_example_lines(data.mes_example)])[:MAX_POST_EXAMPLES]
    pillars = [pillar["name"] for pillar in strategy.get("pillars", [])]
    voice = core.get("voice") or data.personality
    conversation = [
        MessageExample(name=USER_PLACEHOLDER, content=MessageContent(text="hey, who are you?")),
        MessageExample(name=data.name, content=MessageContent(text=data.first_mes or voice)),
    ]
    return ElizaCharacter(
        name=data.name,
        username=core.get("handle") or None,
        system=data.system_prompt or None,
        bio=bio or [data.name],
        messageExamples=[conversation],
        postExamples=posts or [data.first_mes or data.description or data.name],
        topics=_unique([*core.get("interests", []), *pillars, *data.tags]) or [data.name],
        adjectives=_unique(core.get("personality", []) or _split(data.personality))
        or ["authentic"],
        style=Style(
            all=_unique([voice, *authenticity.get("writing_habits", [])]) or ["stay in character"],
            chat=["answer like a person, not an assistant", f"sound like {data.name}"],
            post=_unique([strategy.get("tone", ""), _emoji_rule(strategy),
                          "stay under 280 characters"]),
        ),
    )


def _emoji_rule(strategy: dict[str, Any]) -> str:
    emoji = strategy.get("emoji_use")
    return f"emoji use: {emoji}" if emoji else ""
