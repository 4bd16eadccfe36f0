"""Realistic full names and handles per region, language and gender, drawn without an LLM.

LLMs collapse onto a few names (TinyTroupe renames its agents "Eleanor"; a 200-persona batch
against a server with little variety lost 34 personas to clashes), so names are drawn like the
other seed attributes. The lists are Faker's per-locale person providers: frequency-weighted
given and family names for ~80 locales, kept up to date by its maintainers, shipped inside the
wheel (offline). `NAME_SOURCES` maps each region of `population.REGIONS` to the locales its
people's names come from and how a full name is written there; `NATIVE_SOURCES` gives the
native-script names for regions whose script is not Latin, used when the persona writes in that
language. Handles are ASCII (X's rule), derived from the name through `anyascii`.

A candidate is a pure function of (seed, attempt): the caller walks attempts 0, 1, 2, … until
the registry has both the name and the handle free, so a clash costs a draw, never a persona.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from anyascii import anyascii
from faker import Faker

MAX_HANDLE_CHARS = 15
MAX_NAME_CHARS = 60
# After this many attempts a second given name joins the first ("Ana Lucía Ortiz"): the space of
# names grows by the size of the given-name list, so small lists (vi_VN, en_NG) never run out.
PLAIN_ATTEMPTS = 24
HANDLE_FORMS = ("{g}{f}", "{g}_{f}", "{gi}{f}", "{g}{fi}", "{g}{f}")  # the last + digits
_NOT_HANDLE = re.compile(r"[^a-z0-9_]")


@dataclass(frozen=True)
class NameSource:
    """One locale's names and how a full name is written with them."""

    locale: str
    order: str = "{given} {family}"
    script: str = "native"  # a key of SCRIPT_PARTS
    middle: bool = False  # Vietnamese names carry a middle name (Faker's middle_name)


@dataclass(frozen=True)
class NameParts:
    """A drawn name's parts as written, and in ASCII for the handle."""

    given: str
    family: str
    given_ascii: str
    family_ascii: str
    middle: str = ""
    order: str = "{given} {family}"


def _ascii_word(text: str) -> str:
    return _NOT_HANDLE.sub("", anyascii(text).lower().replace(" ", ""))


def _as_written(fake: Faker, given_method: str, family_method: str) -> NameParts:
    given, family = getattr(fake, given_method)(), getattr(fake, family_method)()
    return NameParts(given, family, _ascii_word(given), _ascii_word(family))


def _romanized(fake: Faker, given_method: str, family_method: str) -> NameParts:
    # ja_JP keeps separate romanized lists ("Kumiko Kimura"): the Latin name a Japanese person
    # writes, not a Chinese reading of the kanji.
    given_roman = given_method.replace("first_name", "first_romanized_name")
    given, family = getattr(fake, given_roman)(), fake.last_romanized_name()
    return NameParts(given, family, _ascii_word(given), _ascii_word(family))


def _kanji(fake: Faker, given_method: str, family_method: str) -> NameParts:
    # The (kanji, kana, romanized) pairs keep the handle on the name's own reading.
    given, _, given_roman = getattr(fake, given_method + "_pair")()
    family, _, family_roman = fake.last_name_pair()
    return NameParts(given, family, _ascii_word(given_roman), _ascii_word(family_roman))


def _transliterated(fake: Faker, given_method: str, family_method: str) -> NameParts:
    # ko_KR has only Hangul; anyascii writes it in Revised Romanization ("서현" → "Seohyeon").
    native = _as_written(fake, given_method, family_method)
    return NameParts(anyascii(native.given).capitalize(), anyascii(native.family).capitalize(),
                     native.given_ascii, native.family_ascii)


PartsMaker = Callable[[Faker, str, str], NameParts]
SCRIPT_PARTS: dict[str, PartsMaker] = {
    "native": _as_written, "romanized": _romanized, "kanji": _kanji,
    "transliterated": _transliterated,
}
# Faker's gendered lists; non-binary personas get either list (few locales keep unisex names).
GIVEN_METHODS = {"woman": ("first_name_female",), "man": ("first_name_male",)}
FAMILY_METHODS = {"woman": "last_name_female", "man": "last_name_male"}  # pl_PL: -ska / -ski
ANY_GIVEN = ("first_name_female", "first_name_male")


def _sources(*locales: str) -> tuple[NameSource, ...]:
    return tuple(NameSource(locale) for locale in locales)


# Where Faker has no list of a country's own (en_AU, en_PH and ar_EG fall back to en_US names),
# the closest list it has is named instead: Egypt's Latin-script names come from fr_DZ's
# Arabic names in French transliteration, its Arabic-script ones from ar_AA.
NAME_SOURCES: dict[str, tuple[NameSource, ...]] = {
    "us-east": _sources("en_US"), "us-central": _sources("en_US"), "us-west": _sources("en_US"),
    "canada": _sources("en_US", "fr_CA"), "mexico": _sources("es_MX"),
    "brazil": _sources("pt_BR"), "argentina": _sources("es_AR"), "uk": _sources("en_GB"),
    "spain": _sources("es_ES"), "germany": _sources("de_DE"), "france": _sources("fr_FR"),
    "poland": _sources("pl_PL"), "nigeria": _sources("yo_NG", "ig_NG", "ha_NG", "en_NG"),
    "kenya": _sources("en_KE"), "egypt": _sources("fr_DZ"), "turkey": _sources("tr_TR"),
    "india": _sources("en_IN"), "indonesia": _sources("id_ID"), "philippines": _sources("en_PH"),
    "vietnam": (NameSource("vi_VN", "{family} {middle} {given}", middle=True),),
    "japan": (NameSource("ja_JP", script="romanized"),),
    "korea": (NameSource("ko_KR", script="transliterated"),),
    "australia": _sources("en_NZ", "en_GB"),
}
# Native-script names for a persona that writes in its region's own language.
NATIVE_SOURCES: dict[str, tuple[frozenset[str], tuple[NameSource, ...]]] = {
    "japan": (frozenset({"japanese", "日本語", "ja"}),
              (NameSource("ja_JP", "{family} {given}", script="kanji"),)),
    "korea": (frozenset({"korean", "한국어", "ko"}), (NameSource("ko_KR", "{family}{given}"),)),
    "egypt": (frozenset({"arabic", "العربية", "ar"}), _sources("ar_AA")),
    "india": (frozenset({"hindi", "हिन्दी", "hi"}), _sources("hi_IN")),
}
DEFAULT_SOURCES = _sources("en_US")  # a region a spec adds without names of its own


@cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


def sources_for(region: str, language: str) -> tuple[NameSource, ...]:
    """The name sources of a region, in its native script when the persona writes its language."""
    native = NATIVE_SOURCES.get(region)
    if native is not None and language.strip().casefold() in native[0]:
        return native[1]
    return NAME_SOURCES.get(region, DEFAULT_SOURCES)


def draw_parts(sources: tuple[NameSource, ...], gender: str, rng: random.Random) -> NameParts:
    """One name from one of `sources` (chosen by `rng`), for `gender`."""
    source = rng.choice(sources)
    fake = _faker(source.locale)
    fake.seed_instance(rng.getrandbits(64))  # Faker's own rng, made a function of ours
    given_method = rng.choice(GIVEN_METHODS.get(gender, ANY_GIVEN))
    family_method = FAMILY_METHODS.get(gender, "last_name")
    parts = SCRIPT_PARTS[source.script](fake, given_method, family_method)
    middle = fake.middle_name() if source.middle else ""
    return dataclasses.replace(parts, middle=middle, order=source.order)


def full_name(parts: NameParts) -> str:
    """The name as its locale writes it, at most MAX_NAME_CHARS."""
    text = parts.order.format(given=parts.given, family=parts.family, middle=parts.middle)
    return " ".join(text.split())[:MAX_NAME_CHARS]


def with_second_given(parts: NameParts, second: NameParts) -> NameParts:
    """`parts` with `second`'s given name after its own ("Ana" + "Lucía" → "Ana Lucía")."""
    return dataclasses.replace(parts, given=f"{parts.given} {second.given}")


def handle_for(given_ascii: str, family_ascii: str, attempt: int, rng: random.Random) -> str:
    """The `attempt`-th handle for a name: anaortiz, ana_ortiz, aortiz, anao, then anaortiz417…"""
    form = HANDLE_FORMS[min(attempt, len(HANDLE_FORMS) - 1)]
    digits = str(rng.randrange(10, 10_000)) if attempt >= len(HANDLE_FORMS) - 1 else ""
    base = form.format(g=(given_ascii or "user")[:10], f=family_ascii, gi=given_ascii[:1],
                       fi=family_ascii[:1])
    return base[:MAX_HANDLE_CHARS - len(digits)] + digits


def ascii_parts(name: str) -> tuple[str, str]:
    """(given, family) in ASCII for a name given as text (a spec's or a hint's)."""
    words = [word for word in (_ascii_word(word) for word in name.split()) if word]
    if not words:
        return "", ""
    return words[0], words[-1] if len(words) > 1 else ""


def warm_up() -> None:
    """Load every locale's name lists now (~1.5 s here for 26 locales), not at first use."""
    for sources in (*NAME_SOURCES.values(), *(native for _, native in NATIVE_SOURCES.values())):
        for source in sources:
            _faker(source.locale)
