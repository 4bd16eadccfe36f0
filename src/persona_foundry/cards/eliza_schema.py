"""`validate` for ElizaOS character files: `@elizaos/core` 1.7.2's `characterSchema`, rule for rule.

The zod schema (src/schemas/character.ts in the npm package) is mirrored here: an `.optional()`
key may be left out but never be null; `z.object` strips unknown keys except at the top, which is
`.strict()`; `content` and `attachments` items keep any extra key. What ElizaOS accepts but our
exports avoid (one bio string, empty lists, a character that cannot start or answer) comes back
as warnings, each saying whose rule it is.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .eliza import BOOTSTRAP_PLUGIN, MODEL_PLUGINS, SQL_PLUGIN

UUID_PATTERN = r"(?i)^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
ChannelType = Literal["SELF", "DM", "GROUP", "VOICE_DM", "VOICE_GROUP", "FEED", "THREAD",
                      "WORLD", "FORUM", "API"]
ContentType = Literal["image", "video", "audio", "document", "link"]
Uuid = str
Setting = str | bool | int | float | dict[str, Any] | list[Any]
OUR_RULE = "Persona Foundry's rule (ElizaOS accepts this): "
CHARACTERFILE_LISTS = ("messageExamples", "postExamples", "topics", "adjectives")


class _Zod(BaseModel):
    """A zod object: no coercion, optional keys never null, unknown keys stripped."""

    model_config = ConfigDict(strict=True, extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("expected a value, received null (leave the key out instead)")
        return value


class _Loose(_Zod):
    model_config = ConfigDict(strict=True, extra="allow")


class Media(_Loose):
    """mediaSchema (`.loose()`)."""

    id: str
    url: str
    title: str | None = None
    source: str | None = None
    description: str | None = None
    text: str | None = None
    contentType: ContentType | None = None  # noqa: N815  # ElizaOS key


class Content(_Loose):
    """contentSchema (`.catchall(z.unknown())`)."""

    text: str | None = None
    thought: str | None = None
    actions: list[str] | None = None
    providers: list[str] | None = None
    source: str | None = None
    target: str | None = None
    url: str | None = None
    inReplyTo: Uuid | None = Field(default=None, pattern=UUID_PATTERN)  # noqa: N815
    attachments: list[Media] | None = None
    channelType: ChannelType | None = None  # noqa: N815  # ElizaOS key


class MessageExample(_Zod):
    """messageExampleSchema."""

    name: str
    content: Content


class KnowledgeFile(_Zod):
    """knowledgeItemSchema's `{path, shared?}`."""

    path: str
    shared: bool | None = None


class KnowledgeDirectory(_Zod):
    """directoryItemSchema."""

    directory: str
    shared: bool | None = None


class Style(_Zod):
    """styleSchema."""

    all: list[str] | None = None
    chat: list[str] | None = None
    post: list[str] | None = None


class Character(_Zod):
    """characterSchema (`.strict()`: an unknown top-level key is an error)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    id: Uuid | None = Field(default=None, pattern=UUID_PATTERN)
    name: str = Field(min_length=1)
    username: str | None = None
    system: str | None = None
    templates: dict[str, str] | None = None
    bio: str | list[str]
    messageExamples: list[list[MessageExample]] | None = None  # noqa: N815  # ElizaOS key
    postExamples: list[str] | None = None  # noqa: N815  # ElizaOS key
    topics: list[str] | None = None
    adjectives: list[str] | None = None
    knowledge: list[str | KnowledgeFile | KnowledgeDirectory] | None = None
    plugins: list[str] | None = None
    settings: dict[str, Setting] | None = None
    secrets: dict[str, str | bool | int | float] | None = None
    style: Style | None = None


def eliza_problems(character: Any) -> list[str]:
    """Why `@elizaos/core` 1.7.2's validateCharacter() would reject this character, if it would."""
    try:
        Character.model_validate(character)
    except ValidationError as exc:
        return [f"ElizaOS: {'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"
                for e in exc.errors(include_url=False)]
    return []


def eliza_warnings(character: dict[str, Any]) -> list[str]:
    """What ElizaOS's schema accepts but a character should not do: our rules, and the runtime's."""
    ours = []
    if isinstance(character.get("bio"), str):
        ours.append("bio is one string; we write a list (the characterfile schema wants one)")
    ours += [f"{key} is missing or empty (characterfile and our exports need at least one)"
             for key in CHARACTERFILE_LISTS if not character.get(key)]
    style = character.get("style")
    style = style if isinstance(style, dict) else {}
    ours += [f"style.{key} is missing or empty (our exports write at least one rule)"
             for key in ("all", "chat", "post") if not style.get(key)]
    return [OUR_RULE + warning for warning in ours] + _plugin_warnings(character.get("plugins"))


def _plugin_warnings(plugins: Any) -> list[str]:
    named = {plugin for plugin in plugins if isinstance(plugin, str)} if isinstance(
        plugins, list) else set()
    warnings = []
    if SQL_PLUGIN not in named:
        warnings.append(f"ElizaOS 1.7.2's runtime: no {SQL_PLUGIN}, so the agent does not start "
                        "('Database adapter not initialized')")
    if BOOTSTRAP_PLUGIN not in named:
        warnings.append(f"{OUR_RULE}no {BOOTSTRAP_PLUGIN} (its event handlers, REPLY action and "
                        "CHARACTER provider; its README: 'should be imported into most agents')")
    if not named & set(MODEL_PLUGINS):
        warnings.append(f"{OUR_RULE}no model provider plugin ({', '.join(MODEL_PLUGINS)}): "
                        "the agent cannot answer")
    return warnings
