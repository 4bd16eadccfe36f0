"""`diversity`: does a folder of personas look like a crowd? Attributes vs targets, names, bios.

Targets: no duplicate names or handles; fewer than 2 % of bio pairs at or above the
near-duplicate threshold (character 5-gram Jaccard, the same measure as posts).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .files import CARD_FILE_SUFFIX
from .population import ATTRIBUTES, PopulationSpec
from .stages import core
from .store import PersonaExtension, extension_of, read_card_json
from .textchecks import NEAR_DUPLICATE_JACCARD, shingles

MAX_NEAR_DUPLICATE_SHARE = 0.02
TOP_PAIRS = 5


@dataclass(frozen=True)
class PersonaFacts:
    """What the report needs from one card."""

    card: str
    name: str
    handle: str
    bio: str
    draw: dict[str, Any]


@dataclass
class DiversityReport:
    """The numbers `diversity` prints."""

    personas: int
    distinct_names: int
    duplicate_names: list[str]
    duplicate_handles: list[str]
    distributions: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    bio_pairs: int = 0
    near_duplicate_pairs: int = 0
    most_similar: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def near_duplicate_share(self) -> float:
        """Share of bio pairs at or above the near-duplicate threshold."""
        return self.near_duplicate_pairs / self.bio_pairs if self.bio_pairs else 0.0

    @property
    def meets_targets(self) -> bool:
        """No duplicate names/handles and < 2 % near-duplicate bio pairs."""
        return (not self.duplicate_names and not self.duplicate_handles
                and self.near_duplicate_share < MAX_NEAR_DUPLICATE_SHARE)


def read_facts(path: Path) -> PersonaFacts | None:
    """The report's view of one card; None for a file that is not one of ours."""
    try:
        data = read_card_json(path)["data"]
    except InputError:
        return None
    extensions = data.get("extensions")
    if not isinstance(extensions, dict):
        return None
    ours = extension_of(extensions) or PersonaExtension()
    return PersonaFacts(path.name, str(data.get("name", "")), ours.stage_field(core.NAME, "handle"),
                        ours.stage_field(core.NAME, "bio") or str(data.get("description", "")),
                        ours.draw or {})


def _duplicates(values: list[str]) -> list[str]:
    counts = Counter(value.casefold() for value in values if value)
    return sorted(value for value, count in counts.items() if count > 1)


def _distributions(facts: list[PersonaFacts],
                   spec: PopulationSpec) -> dict[str, dict[str, tuple[float, float]]]:
    drawn = [fact.draw for fact in facts if fact.draw]
    result = {}
    for attribute in ATTRIBUTES:
        weights = spec.weights(attribute)
        total = sum(weights.values())
        counts = Counter(draw.get(attribute) for draw in drawn)
        result[attribute] = {value: (counts.get(value, 0) / len(drawn) if drawn else 0.0,
                                     weight / total) for value, weight in weights.items()}
    return result


def diversity_report(facts: list[PersonaFacts],
                     spec: PopulationSpec | None = None) -> DiversityReport:
    """Names, attribute shares vs targets, and pairwise bio similarity."""
    report = DiversityReport(
        personas=len(facts), distinct_names=len({f.name.casefold() for f in facts}),
        duplicate_names=_duplicates([f.name for f in facts]),
        duplicate_handles=_duplicates([f.handle for f in facts]),
        distributions=_distributions(facts, spec or PopulationSpec()),
    )
    bio_shingles = [(fact.card, shingles(fact.bio)) for fact in facts if fact.bio]
    scored = []
    for (left, a), (right, b) in itertools.combinations(bio_shingles, 2):
        similarity = len(a & b) / len(a | b) if a | b else 1.0
        scored.append((similarity, left, right))
        report.near_duplicate_pairs += similarity >= NEAR_DUPLICATE_JACCARD
    report.bio_pairs = len(scored)
    report.most_similar = sorted(scored, reverse=True)[:TOP_PAIRS]
    return report


def folder_facts(folder: Path) -> list[PersonaFacts]:
    """Every card of ours in a folder (`*_persona.json`)."""
    found = (read_facts(path) for path in sorted(folder.glob(f"*{CARD_FILE_SUFFIX}")))
    return [fact for fact in found if fact is not None]
