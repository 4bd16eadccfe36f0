"""Character Card V2 (`chara_card_v2`, 2.0): the model our cards are validated against."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator


class CharacterBookEntry(BaseModel):
    """One lorebook entry (all optional spec keys included, so importers see explicit values)."""

    keys: list[str]
    content: str
    extensions: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    insertion_order: int
    case_sensitive: bool = False
    name: str = ""
    priority: int = 10
    id: int
    comment: str = ""
    selective: bool = False
    secondary_keys: list[str] = Field(default_factory=list)
    constant: bool = False
    position: Literal["before_char", "after_char"] = "before_char"


class CharacterBook(BaseModel):
    """The embedded lorebook; never null, entry ids unique."""

    name: str = ""
    description: str = ""
    scan_depth: int = 4
    token_budget: int = 1024
    recursive_scanning: bool = False
    extensions: dict[str, Any] = Field(default_factory=dict)
    entries: list[CharacterBookEntry] = Field(default_factory=list)

    @field_validator("entries", mode="after")
    @classmethod
    def _unique_ids(cls, entries: list[CharacterBookEntry]) -> list[CharacterBookEntry]:
        ids = [entry.id for entry in entries]
        if len(ids) != len(set(ids)):
            raise ValueError(f"lorebook entry ids must be unique, got {ids}")
        return entries


class CardDataV2(BaseModel):
    """The 14 `data` keys of a V2 card."""

    name: str = Field(min_length=1)
    description: str
    personality: str
    scenario: str
    first_mes: str
    mes_example: str
    creator_notes: str
    system_prompt: str
    post_history_instructions: str
    alternate_greetings: list[str]
    character_book: CharacterBook
    tags: list[str]
    creator: str
    character_version: str
    extensions: dict[str, Any]


class CharacterCardV2(BaseModel):
    """A whole V2 card."""

    spec: Literal["chara_card_v2"] = "chara_card_v2"
    spec_version: Literal["2.0"] = "2.0"
    data: CardDataV2
