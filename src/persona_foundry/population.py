"""Seed attributes for a batch, drawn outside the LLM so a batch looks like a crowd.

LLMs asked for many personas return the same few names, ages, jobs and voices; TinyTroupe,
OASIS and PersonaHub all sample attributes first. Each persona of a batch gets a draw from
explicit distributions (defaults below; `--population spec.yaml` overrides weights or fixes
values), seeded so a batch is reproducible. The image still wins: an apparent age or gender from
the photo replaces a draw that contradicts it.

The name and handle are drawn last (after the photo has had its say on gender) from the region's
names (names.py), and claimed in a `NameRegistry` before stage 1 is called: unique against the
output folder and the batch by construction, and no prompt lists what is taken. A spec's `name`,
`first_name` and `last_name` fix or weight them; a hint that names the persona wins.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import unicodedata
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from . import names
from .errors import ConfigurationError, IdentityError

AGE_BANDS: dict[str, tuple[int, int]] = {
    "18-24": (18, 24), "25-34": (25, 34), "35-44": (35, 44), "45-54": (45, 54),
    "55-70": (55, 70),
}
# (country, region, IANA time zone): a spread over continents and time zones.
REGIONS: dict[str, tuple[str, str, str]] = {
    "us-east": ("United States", "East Coast", "America/New_York"),
    "us-central": ("United States", "Midwest", "America/Chicago"),
    "us-west": ("United States", "West Coast", "America/Los_Angeles"),
    "canada": ("Canada", "Ontario", "America/Toronto"),
    "mexico": ("Mexico", "Mexico City", "America/Mexico_City"),
    "brazil": ("Brazil", "São Paulo", "America/Sao_Paulo"),
    "argentina": ("Argentina", "Buenos Aires", "America/Argentina/Buenos_Aires"),
    "uk": ("United Kingdom", "England", "Europe/London"),
    "spain": ("Spain", "Madrid", "Europe/Madrid"),
    "germany": ("Germany", "Berlin", "Europe/Berlin"),
    "france": ("France", "Lyon", "Europe/Paris"),
    "poland": ("Poland", "Kraków", "Europe/Warsaw"),
    "nigeria": ("Nigeria", "Lagos", "Africa/Lagos"),
    "kenya": ("Kenya", "Nairobi", "Africa/Nairobi"),
    "egypt": ("Egypt", "Cairo", "Africa/Cairo"),
    "turkey": ("Turkey", "Istanbul", "Europe/Istanbul"),
    "india": ("India", "Bengaluru", "Asia/Kolkata"),
    "indonesia": ("Indonesia", "Jakarta", "Asia/Jakarta"),
    "philippines": ("Philippines", "Manila", "Asia/Manila"),
    "vietnam": ("Vietnam", "Ho Chi Minh City", "Asia/Ho_Chi_Minh"),
    "japan": ("Japan", "Osaka", "Asia/Tokyo"),
    "korea": ("South Korea", "Seoul", "Asia/Seoul"),
    "australia": ("Australia", "Melbourne", "Australia/Melbourne"),
}
DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "age_band": {"18-24": 0.25, "25-34": 0.35, "35-44": 0.2, "45-54": 0.12, "55-70": 0.08},
    "gender": {"woman": 0.48, "man": 0.48, "non-binary": 0.04},
    "region": {"us-east": 0.08, "us-central": 0.04, "us-west": 0.06, **{
        name: 0.82 / 20 for name in REGIONS if not name.startswith("us-")}},
    "occupation_family": {name: 1.0 for name in (
        "software and tech", "healthcare", "education", "arts and design", "skilled trades",
        "hospitality and food", "finance", "science and research", "sports and fitness",
        "media and journalism", "retail and sales", "public service", "student",
        "agriculture", "small business owner")},
    "openness": {"low": 0.25, "medium": 0.5, "high": 0.25},
    "conscientiousness": {"low": 0.25, "medium": 0.5, "high": 0.25},
    "extraversion": {"low": 0.25, "medium": 0.5, "high": 0.25},
    "agreeableness": {"low": 0.25, "medium": 0.5, "high": 0.25},
    "neuroticism": {"low": 0.25, "medium": 0.5, "high": 0.25},
    "posting_style": {name: 1.0 for name in (
        "casual diarist", "expert explainer", "humorist", "enthusiast", "curator",
        "storyteller", "advocate", "minimalist")},
    "niche": {name: 1.0 for name in (
        "food", "travel", "fitness", "fashion", "technology", "gaming", "books", "music",
        "parenting", "personal finance", "outdoors", "art", "science", "pets",
        "home and garden", "film and tv")},
}
ATTRIBUTES = tuple(DEFAULT_WEIGHTS)
NAME_FIELDS = ("name", "first_name", "last_name")  # no defaults: the region's names are
MAX_NAME_ATTEMPTS = 4096
HANDLE_ATTEMPTS = 8
# A spec's weighted names are tried this many times per name before the region's list takes over.
SPEC_NAME_ATTEMPTS_PER_NAME = 4
# "named Ana Ortiz", "called Ana", "name is Ana Ortiz", "name: 林 千代"; the name runs to the first
# punctuation or lower-case word ("named Ana Ortiz who climbs" → "Ana Ortiz").
_HINT_NAME = re.compile(r"(?:\bnamed\b|\bcalled\b|\bname\s+is\b|\bname\s*:)\s*([^,;.!?()\n]+)",
                        re.IGNORECASE)
NameSource = Literal["drawn", "population", "hint", "card"]
KEPT_WHEN_TAKEN: frozenset[NameSource] = frozenset({"card"})
APPARENT_GENDERS = {"female": "woman", "male": "man"}


class AttributeSpec(BaseModel):
    """One attribute of a population spec: new weights, or one fixed value."""

    weights: dict[str, float] | None = None
    fixed: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> AttributeSpec:
        if (self.weights is None) == (self.fixed is None):
            raise ValueError("give either weights or fixed")
        if self.weights is not None and (not self.weights or min(self.weights.values()) < 0):
            raise ValueError("weights must be non-negative and not empty")
        return self


class PopulationSpec(BaseModel):
    """A population spec file: per-attribute overrides of the defaults."""

    attributes: dict[str, AttributeSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> PopulationSpec:
        known = (*ATTRIBUTES, *NAME_FIELDS)
        unknown = set(self.attributes) - set(known)
        if unknown:
            raise ValueError(f"unknown attributes {sorted(unknown)}; known: {list(known)}")
        for name, spec in self.attributes.items():
            values = set(spec.weights or {}) | ({spec.fixed} if spec.fixed else set())
            if name in ("age_band", "region") and values - set(DEFAULT_WEIGHTS[name]):
                unknown_values = sorted(values - set(DEFAULT_WEIGHTS[name]))
                raise ValueError(f"{name}: unknown values {unknown_values}")
        return self

    def weights(self, attribute: str) -> dict[str, float]:
        """The distribution to draw `attribute` from."""
        spec = self.attributes.get(attribute)
        if spec is None:
            return DEFAULT_WEIGHTS[attribute]
        return {spec.fixed: 1.0} if spec.fixed else dict(spec.weights or {})

    def name_weights(self, field: str) -> dict[str, float] | None:
        """The spec's distribution of a name field, or None when the region's names apply."""
        return self.weights(field) if field in self.attributes else None

    def fixes_name(self) -> str | None:
        """The full name every persona must have, when the spec fixes one."""
        spec = self.attributes.get("name")
        return spec.fixed if spec is not None else None


class PersonaDraw(BaseModel):
    """One persona's seed attributes."""

    age_band: str
    gender: str
    region: str
    occupation_family: str
    openness: str
    conscientiousness: str
    extraversion: str
    agreeableness: str
    neuroticism: str
    posting_style: str
    niche: str
    overridden_by_image: list[str] = Field(default_factory=list)
    name: str = ""
    handle: str = ""
    name_from: NameSource | Literal[""] = ""

    @property
    def country(self) -> str:
        """The drawn country."""
        return REGIONS.get(self.region, (self.region, "", "UTC"))[0]

    @property
    def timezone(self) -> str:
        """The drawn time zone."""
        return REGIONS.get(self.region, ("", "", "UTC"))[2]

    def describe(self) -> str:
        """The draw as prompt lines for stage 1."""
        country, region, zone = REGIONS.get(self.region, (self.region, "", "UTC"))
        low, high = AGE_BANDS.get(self.age_band, (18, 70))
        big_five = ", ".join(f"{trait} {getattr(self, trait)}" for trait in (
            "openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"))
        return "\n".join([
            f"- age: between {low} and {high}",
            f"- gender: {self.gender}",
            f"- lives in: {region}, {country} (time zone {zone})",
            f"- works in: {self.occupation_family}",
            f"- personality (Big Five): {big_five}",
            f"- posting style: {self.posting_style}",
            f"- content niche: {self.niche}",
        ])


def load_population_spec(path: Path | None) -> PopulationSpec:
    """Read a YAML or JSON spec; no path means the defaults."""
    if path is None:
        return PopulationSpec()
    try:
        text = path.read_text(encoding="utf-8")
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return PopulationSpec.model_validate(data or {})
    except (OSError, ValueError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigurationError(f"population spec {path}: {exc}") from exc


def _draw(spec: PopulationSpec, rng: random.Random) -> PersonaDraw:
    values: dict[str, Any] = {}
    for attribute in ATTRIBUTES:
        weights = spec.weights(attribute)
        values[attribute] = rng.choices(list(weights), weights=list(weights.values()))[0]
    return PersonaDraw.model_validate(values)


def draw_for_image(spec: PopulationSpec, seed: int, image_sha256: str) -> PersonaDraw:
    """One image's draw: fixed by the seed and the image itself, not by its place in the batch,
    so a rerun asks stage 1 the same question (a cache hit, never a second payment)."""
    return _draw(spec, random.Random(f"{seed}:{image_sha256}"))


def _folded(value: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


class NameRegistry:
    """Names and handles taken in the output folder and this run, indexed by folded form.

    Claimed before stage 1 is called, so a clash costs a second draw, never a re-ask or a
    persona; the index is looked up, never pasted into a prompt.
    """

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._owners)

    def _free(self, key: str, owner: str) -> bool:
        return self._owners.get(key, owner) == owner

    def name_free(self, name: str, owner: str) -> bool:
        """Whether `name` is free for `owner` (or already theirs)."""
        return self._free("name:" + _folded(name), owner)

    def claim(self, name: str, handle: str, owner: str) -> bool:
        """Take the name and the handle for `owner` if both are free; False if either is not."""
        keys = [f"{kind}:{_folded(value)}" for kind, value in (("name", name),
                                                              ("handle", handle.lstrip("@")))
                if value.strip()]
        if not all(self._free(key, owner) for key in keys):
            return False
        for key in keys:
            self._owners[key] = owner
        return True


def name_in_hint(hint: str | None) -> str | None:
    """The persona's name when the creator's hint gives one ("named Ana Ortiz, a climber")."""
    match = _HINT_NAME.search(hint or "")
    if match is None:
        return None
    words: list[str] = []
    for word in match.group(1).split():
        if word[0].islower():  # caseless scripts (kanji, Arabic) are never lower case
            break
        words.append(word)
    return " ".join(words)[:names.MAX_NAME_CHARS] or None


def _spec_parts(spec: PopulationSpec, attempt: int, rng: random.Random) -> names.NameParts | None:
    weights = spec.name_weights("name")
    if weights is None or attempt >= SPEC_NAME_ATTEMPTS_PER_NAME * len(weights):
        return None  # every weighted name taken: the region's names take over
    text = rng.choices(list(weights), weights=list(weights.values()))[0]
    given, family = names.ascii_parts(text)
    return names.NameParts(text, "", given, family, order="{given}")


def _part(spec: PopulationSpec, field: str, rng: random.Random) -> str | None:
    weights = spec.name_weights(field)
    return rng.choices(list(weights), weights=list(weights.values()))[0] if weights else None


def _region_parts(draw: PersonaDraw, spec: PopulationSpec, language: str, attempt: int,
                  rng: random.Random) -> names.NameParts:
    sources = names.sources_for(draw.region, language)
    parts = names.draw_parts(sources, draw.gender, rng)
    given, family = _part(spec, "first_name", rng), _part(spec, "last_name", rng)
    if given is not None:
        parts = dataclasses.replace(parts, given=given, given_ascii=names.ascii_parts(given)[0])
    if family is not None:
        parts = dataclasses.replace(parts, family=family,
                                    family_ascii=names.ascii_parts(family)[0])
    if attempt >= names.PLAIN_ATTEMPTS:
        parts = names.with_second_given(parts, names.draw_parts(sources, draw.gender, rng))
    return parts


def _claim_handle(registry: NameRegistry, name: str, parts: names.NameParts, owner: str,
                  rng: random.Random) -> str | None:
    for attempt in range(HANDLE_ATTEMPTS):
        handle = names.handle_for(parts.given_ascii, parts.family_ascii, attempt, rng)
        if handle and registry.claim(name, handle, owner):
            return handle
    return None


def claim_fixed_identity(registry: NameRegistry, name: str, owner: str, source: NameSource,
                         seed: str, handle: str | None = None) -> tuple[str, str]:
    """Claim a name given from outside the draw (hint, spec, an existing card).

    Raises IdentityError when a creator's name (hint, spec) is taken. An existing card keeps
    its name and handle even then: it already is that persona (a folder written before names
    were claimed may hold duplicates), and the rest of its identity was built on them.
    """
    if handle and registry.claim(name, handle, owner):
        return name, handle
    given, family = names.ascii_parts(name)
    parts = names.NameParts(name, "", given, family)
    rng = random.Random(f"{seed}:handle")
    claimed = registry.name_free(name, owner) and _claim_handle(registry, name, parts, owner, rng)
    if claimed:
        return name, claimed
    if source in KEPT_WHEN_TAKEN:
        return name, handle or names.handle_for(given, family, 0, rng)
    raise IdentityError(name, source, "is already taken by another persona in this folder or "
                        "batch")


def draw_identity(draw: PersonaDraw, spec: PopulationSpec, *, seed: int, image_sha256: str,
                  language: str, registry: NameRegistry, owner: str) -> tuple[str, str]:
    """Draw and claim a free (name, handle): attempt k is fixed by (seed, image, k), so a clash
    moves to the next candidate and a rerun of the same batch draws the same names."""
    for attempt in range(MAX_NAME_ATTEMPTS):
        rng = random.Random(f"{seed}:{image_sha256}:name:{attempt}")
        parts = _spec_parts(spec, attempt, rng) or _region_parts(draw, spec, language, attempt,
                                                                 rng)
        name = names.full_name(parts)
        if registry.name_free(name, owner):
            handle = _claim_handle(registry, name, parts, owner, rng)
            if handle is not None:
                return name, handle
    raise IdentityError(f"{draw.region}/{draw.gender}", "population",
                        f"no free name after {MAX_NAME_ATTEMPTS} draws")


def band_for_age(age: int) -> str:
    """The age band that holds `age` (18+ only)."""
    for band, (low, high) in AGE_BANDS.items():
        if low <= age <= high:
            return band
    return "18-24" if age < 18 else "55-70"


def reconcile_with_image(draw: PersonaDraw, apparent_age: int | None,
                         apparent_gender: str | None) -> PersonaDraw:
    """The photo wins: replace a drawn age band or gender that contradicts what it shows."""
    changes: dict[str, Any] = {}
    if apparent_age is not None:
        low, high = AGE_BANDS[draw.age_band]
        if not low - 5 <= apparent_age <= high + 5:
            changes["age_band"] = band_for_age(apparent_age)
    gender = APPARENT_GENDERS.get(apparent_gender or "")
    if gender and draw.gender not in (gender, "non-binary"):
        changes["gender"] = gender
    if not changes:
        return draw
    return draw.model_copy(update={**changes,
                                   "overridden_by_image": sorted(changes)})
