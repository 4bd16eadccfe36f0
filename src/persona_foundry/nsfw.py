"""Content levels, defined once: the names, what each tells a model, and the CLI's spellings.

Adding a level: a name in `NsfwLevel`, its rule in `NSFW_RULES`, a member in `LevelChoice` and
`NsfwChoice` (the import-time check below refuses a level missing from any of them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

NsfwLevel = Literal["off", "suggestive", "explicit"]
NSFW_RULES: dict[NsfwLevel, str] = {
    "off": "Keep everything safe for work: no sexual or erotic content at all.",
    "suggestive": "Flirty, suggestive content is allowed; nothing sexually explicit.",
    "explicit": "Adult content is allowed where the persona calls for it.",
}
# The original tool's spellings, still accepted on the command line.
NSFW_ALIASES: dict[str, NsfwLevel] = {"disabled": "off", "enabled": "explicit"}
NSFW_LEVELS: dict[str, NsfwLevel] = {**{level: level for level in NSFW_RULES}, **NSFW_ALIASES}


class NsfwChoice(StrEnum):
    """--nsfw-level values; `disabled`/`enabled` are the original tool's spellings."""

    off = "off"
    suggestive = "suggestive"
    explicit = "explicit"
    disabled = "disabled"
    enabled = "enabled"


class LevelChoice(StrEnum):
    """--nsfw-level values of commands that take only the levels themselves (`images`)."""

    off = "off"
    suggestive = "suggestive"
    explicit = "explicit"


def nsfw_level(choice: str) -> NsfwLevel:
    """The level a command-line spelling means."""
    return NSFW_LEVELS[choice]


def _check_levels() -> None:
    levels = set(get_args(NsfwLevel))
    if levels != set(NSFW_RULES) or levels != {choice.value for choice in LevelChoice} \
            or set(NSFW_LEVELS) != {choice.value for choice in NsfwChoice}:
        raise ImportError("nsfw.py: NsfwLevel, NSFW_RULES and NsfwChoice disagree")


_check_levels()
