"""Seed attributes for a batch, drawn outside the LLM so a batch looks like a crowd.

LLMs asked for many personas return the same few names, ages, jobs and voices; TinyTroupe,
OASIS and PersonaHub all sample attributes first. Each persona of a batch gets a draw from
explicit distributions (defaults below; `--population spec.yaml` overrides weights or fixes
values), seeded so a batch is reproducible. The image still wins: an apparent age or gender from
the photo replaces a draw that contradicts it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from .errors import ConfigurationError

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
        unknown = set(self.attributes) - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"unknown attributes {sorted(unknown)}; known: {list(ATTRIBUTES)}")
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


class NameRegistry:
    """Names and handles taken in the output folder and this batch; a clash means regenerate."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}
        self.occupations: list[str] = []

    def claim(self, name: str, handle: str, owner: str) -> None:
        """Take a name and handle for `owner`, or raise ValueError if someone else has either."""
        keys = (f"name:{name.casefold()}", f"handle:{handle.casefold()}")
        for key, value in zip(keys, (name, "@" + handle), strict=True):
            holder = self._owners.get(key)
            if holder is not None and holder != owner:
                raise ValueError(f"{value} is already taken by another persona; choose another")
        for key in keys:
            self._owners[key] = owner

    def taken(self) -> tuple[list[str], list[str]]:
        """(names, handles) taken so far, sorted."""
        names = sorted(k.split(":", 1)[1] for k in self._owners if k.startswith("name:"))
        handles = sorted(k.split(":", 1)[1] for k in self._owners if k.startswith("handle:"))
        return names, handles


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
