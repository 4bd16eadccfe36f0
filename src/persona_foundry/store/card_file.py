"""Our part of a card, `data.extensions.persona_foundry`, as a model; and the card file's one
locked read-modify-write.

The extension keeps every stage's output under the stage's own name (`core`, `strategy`, …) and
any key a newer version or another tool added: unknown keys are preserved on every save.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from ..files import pretty_json
from .locking import locked_update, version_of

PF_EXTENSION = "persona_foundry"
T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)


class StageSummary(BaseModel):
    """How one stage went for this card."""

    model_config = ConfigDict(extra="allow")

    status: str
    error: str | None = None
    model: str | None = None
    from_cache: bool = False
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class SourceImageRef(BaseModel):
    """The image a card was made from."""

    model_config = ConfigDict(extra="allow")

    name: str = ""
    path: str = ""
    sha256: str = ""


class PersonaExtension(BaseModel):
    """`data.extensions.persona_foundry`: run facts, stage statuses and stage outputs."""

    model_config = ConfigDict(extra="allow")

    version: str = ""
    source_image: SourceImageRef = Field(default_factory=SourceImageRef)
    visual_facts: dict[str, Any] = Field(default_factory=dict)
    language: str = "English"
    nsfw_level: str = "off"
    generated_at: str = ""
    draw: dict[str, Any] | None = None
    stages: dict[str, StageSummary] = Field(default_factory=dict)
    usage: dict[str, int] = Field(default_factory=dict)

    def stage_output(self, stage: str) -> dict[str, Any] | None:
        """The stored output of `stage` (a dict), or None when it has none."""
        value = (self.model_extra or {}).get(stage)
        return value if isinstance(value, dict) else None

    def parsed_output(self, stage: str, model: type[ModelT]) -> ModelT | None:
        """The stored output of `stage` as its model, or None when absent or no longer valid
        (the model changed since, or another tool wrote it)."""
        value = self.stage_output(stage)
        if value is None:
            return None
        try:
            return model.model_validate(value)
        except ValidationError:
            return None

    def stage_field(self, stage: str, name: str) -> str:
        """One text field of a stage's stored output ("" when absent or not text)."""
        value = (self.stage_output(stage) or {}).get(name)
        return value if isinstance(value, str) else ""

    def set_stage_output(self, stage: str, output: dict[str, Any] | None) -> None:
        """Store (or clear) a stage's output under its name."""
        setattr(self, stage, output)

    def failed_stages(self) -> list[str]:
        """Stages that did not finish, in card order."""
        return [name for name, summary in self.stages.items() if summary.status != "ok"]


def extension_of(extensions: dict[str, Any]) -> PersonaExtension | None:
    """Our extension from a card's `extensions`, or None when the card has none (or a broken
    one: a foreign card is read as a card without our facts, never as an error)."""
    raw = extensions.get(PF_EXTENSION)
    if not isinstance(raw, dict):
        return None
    try:
        return PersonaExtension.model_validate(raw)
    except ValidationError:
        return None


def card_extension(card: dict[str, Any]) -> PersonaExtension | None:
    """Our extension of a card read as JSON (`data.extensions.persona_foundry`), or None."""
    data = card.get("data")
    extensions = data.get("extensions") if isinstance(data, dict) else None
    return extension_of(extensions) if isinstance(extensions, dict) else None


def extensions_with(extensions: dict[str, Any], extension: PersonaExtension) -> dict[str, Any]:
    """A card's `extensions` with ours replaced by `extension` (every other tool's kept)."""
    return {**extensions, PF_EXTENSION: extension.model_dump(mode="json")}


def read_card_json(path: Path) -> dict[str, Any]:
    """A card JSON file as a dict (InputError when it is not one)."""
    return read_card_json_versioned(path)[0]


def _parse(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        card = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(path, f"not a card: {exc}") from exc
    if not isinstance(card, dict) or not isinstance(card.get("data"), dict):
        raise InputError(path, "not a card (no \"data\" object)")
    return card


def read_card_json_versioned(path: Path) -> tuple[dict[str, Any], str]:
    """A card JSON file as a dict, and its version."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"unreadable card: {exc.strerror or exc}") from exc
    return _parse(path, raw), version_of(raw)


def update_card_json(path: Path, change: Callable[[dict[str, Any]], T], *,
                     expected_version: str | None = None) -> tuple[T, str]:
    """Locked read-modify-write of a card JSON file; returns the change's result and the new
    version (StaleVersionError when the file changed since `expected_version` was read)."""
    return locked_update(path, _parse, pretty_json, change, expected_version=expected_version)
