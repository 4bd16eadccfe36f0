"""Character Card V3 (`chara_card_v3`, 3.0), derived from our V2 card so the two always agree."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .v2 import CardDataV2, CharacterBook, CharacterBookEntry, CharacterCardV2

ICON_ASSET_NAME = "main"


class CharacterBookEntryV3(CharacterBookEntry):
    """A V3 lorebook entry: `use_regex` is required."""

    use_regex: bool = False


class CharacterBookV3(CharacterBook):
    """A V3 lorebook."""

    # V3 entries narrow V2's; pydantic validates the narrower type, mypy sees list invariance.
    entries: list[CharacterBookEntryV3] = Field(default_factory=list)  # type: ignore[assignment]


class Asset(BaseModel):
    """One asset reference (`ccdefault:` = the PNG itself, `embeded://…` = inside a CHARX)."""

    type: str
    uri: str
    name: str
    ext: str


class CardDataV3(CardDataV2):
    """V2's data plus the V3 fields."""

    character_book: CharacterBookV3
    group_only_greetings: list[str] = Field(default_factory=list)
    creation_date: int | None = None
    modification_date: int | None = None
    assets: list[Asset] = Field(default_factory=list)
    nickname: str | None = None
    source: list[str] | None = None


class CharacterCardV3(BaseModel):
    """A whole V3 card."""

    spec: Literal["chara_card_v3"] = "chara_card_v3"
    spec_version: Literal["3.0"] = "3.0"
    data: CardDataV3


def to_v3(card: CharacterCardV2, *, icon_uri: str, created: int, modified: int) -> CharacterCardV3:
    """The same card as V3: every V2 field kept, entries with `use_regex`, one icon asset."""
    data: dict[str, Any] = card.data.model_dump()
    data["group_only_greetings"] = []
    data["creation_date"] = created
    data["modification_date"] = modified
    data["assets"] = [{"type": "icon", "uri": icon_uri, "name": ICON_ASSET_NAME, "ext": "png"}]
    return CharacterCardV3(data=CardDataV3.model_validate(data))

