"""Random strings for JSON-schema string nodes: English prose, regex matches, dates and times.

Patterns are walked with the standard library's own regex parser (`re._parser`, the parse tree
hypothesis's `from_regex` walks too) and drawn from a `random.Random`, not with hypothesis
itself: hypothesis draws only inside its engine (`.example()` is unseeded and warns, which the
suite's `filterwarnings = error` turns into a failure), and `rstr`/`exrex` are not installed.
Drawing from our own rng keeps a test server's run reproducible from its seed. What the walker
does not know (back references, lookarounds, word boundaries) raises UnsupportedSchemaError,
and every result is checked against the compiled pattern.
"""

from __future__ import annotations

import random
import re
import re._constants as sre
import re._parser as sre_parse
import string
from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Any


class UnsupportedSchemaError(ValueError):
    """A schema asks for something this generator cannot honour (it never ignores a rule)."""


def _vocabulary(words: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(words.split()))


# Free text: common English words only (no '#', '@', digits, emoji or URLs), so posts read as
# English to the language check and stay apart under the 5-gram near-duplicate check.
FUNCTION_WORDS = _vocabulary("""
a I an as at by in is it me my no of on or so to up us we and are but can for had has her
him his its not now our out she the was who you all any few how one too two just very much
more most some this that then than them they what when with will from have been into over
only also back here there these those their about after again while today maybe still
""")
CONTENT_WORDS = _vocabulary("""
sun day sky tea art bus car cat dog map box cup pen key bag egg ice fog oak sea toy hat job
rain wind snow tree lake road town city park shop home room door desk lamp book page song
film game team work walk ride trip plan idea note word name time week year moon star boat
ship farm barn hill rock sand wave fish bird frog deer bear wolf fox owl rose leaf seed corn
bread cake soup rice salt milk honey lemon apple grape pear plum peach melon bean onion
garden forest river valley island beach desert canyon meadow harbor bridge tunnel tower
castle church school market museum library office studio kitchen window garage cabin
morning evening weekend holiday summer winter spring autumn sunset sunrise weather thunder
coffee dinner lunch picnic festival concert theater gallery painting drawing sketch canvas
camera photo letter parcel ticket journey voyage flight runway station platform compass
lantern candle blanket pillow jacket sweater scarf boots gloves helmet bicycle scooter
guitar violin piano drum melody chorus rhythm podcast chapter story poem novel journal
notebook pencil marker ribbon button thread needle basket bucket shovel ladder hammer
engine rocket planet comet galaxy orbit signal sensor valve filter pressure oxygen battery
market bakery noodle pepper ginger walnut cherry apricot maple cedar pine birch willow
quiet bright gentle golden silver simple lovely careful honest patient curious happy calm
early late slow quick warm cold fresh clean small large little early steady proud lucky
walked cooked baked painted fixed found built learned tried finished started watched
visited planted cleaned wrote read played climbed carried shared called joined opened
thinking planning cooking reading writing running baking drawing sailing hiking singing
neighbor friend sister brother cousin teacher student captain pilot driver farmer artist
""")
FUNCTION_SHARE = 0.3
SENTENCE_WORDS = (4, 13)
DEFAULT_TEXT_SPAN = 200  # a free-text node with no maxLength gets at most minLength + this
SHORTEST_SHARE = 0.15  # a "minimal" server: the shortest text the schema allows
LONGEST_SHARE = 0.1
PATTERN_TRIES = 64
UNBOUNDED_REPEAT_EXTRA = 6  # `*`, `+` and `{n,}` repeat at most n + this many times
# Characters for `.` and negated classes: printable ASCII without line breaks.
PRINTABLE = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")
_CATEGORIES: dict[Any, str] = {
    sre.CATEGORY_DIGIT: string.digits,
    sre.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    sre.CATEGORY_SPACE: " ",
}
_NEGATED_CATEGORIES = {
    sre.CATEGORY_NOT_DIGIT: sre.CATEGORY_DIGIT,
    sre.CATEGORY_NOT_WORD: sre.CATEGORY_WORD,
    sre.CATEGORY_NOT_SPACE: sre.CATEGORY_SPACE,
}
_RFC3339_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RFC3339_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
EARLIEST_DATE = date(2000, 1, 1)
DATE_SPAN_DAYS = 36 * 365


def text_length(low: int, high: int | None, rng: random.Random) -> tuple[int, int]:
    """The (target, ceiling) length of a string between minLength and maxLength."""
    ceiling = low + DEFAULT_TEXT_SPAN if high is None else high
    if low > ceiling:
        raise UnsupportedSchemaError(f"minLength {low} > maxLength {ceiling}")
    roll = rng.random()
    if roll < SHORTEST_SHARE:
        return low, ceiling
    if roll < SHORTEST_SHARE + LONGEST_SHARE:
        return ceiling, ceiling
    return rng.randint(low, ceiling), ceiling


def prose(low: int, high: int | None, rng: random.Random) -> str:
    """English prose of low..high code points, cut at a word boundary, padded to low."""
    target, ceiling = text_length(low, high, rng)
    text = ""
    sentence_left = rng.randint(*SENTENCE_WORDS)
    while len(text) < target:
        word = _word(rng)
        joined = _join(text, word, sentence_left == 0)
        if len(joined) > ceiling:
            break
        text = joined
        sentence_left = rng.randint(*SENTENCE_WORDS) if sentence_left == 0 else sentence_left - 1
    return _finish(_pad(text, low, ceiling, rng), ceiling)


def _word(rng: random.Random) -> str:
    pool = FUNCTION_WORDS if rng.random() < FUNCTION_SHARE else CONTENT_WORDS
    return rng.choice(pool)


def _join(text: str, word: str, new_sentence: bool) -> str:
    if not text:
        return word[:1].upper() + word[1:]
    if new_sentence:
        return f"{text}. {word[:1].upper()}{word[1:]}"
    return f"{text} {word}"


def _pad(text: str, low: int, ceiling: int, rng: random.Random) -> str:
    """Whole words until the text reaches low (the last one chosen to land inside the range)."""
    words = FUNCTION_WORDS + CONTENT_WORDS
    while len(text) < low - 1 or (not text and low):
        gap = 1 if text else 0
        need, room = low - len(text) - gap, ceiling - len(text) - gap
        fitting = [w for w in words if need <= len(w) <= room]
        shorter = [w for w in words if len(w) <= room]
        if not (fitting or shorter):
            raise UnsupportedSchemaError(f"no word fits a text of {low}..{ceiling} characters")
        text = _join(text, rng.choice(fitting or [max(shorter, key=len)]), False)
    return text


def _finish(text: str, ceiling: int) -> str:
    """A full stop at the end where it fits (and the one character a minLength may still need)."""
    return f"{text}." if text and len(text) < ceiling else text


def formatted(fmt: str, rng: random.Random) -> str:
    """A random date, date-time or time string (RFC 3339); other formats raise."""
    makers: dict[str, Callable[[random.Random], str]] = {
        "date": _date, "date-time": _date_time, "time": _time,
    }
    if fmt not in makers:
        raise UnsupportedSchemaError(f"format {fmt!r} is not supported (date, date-time, time)")
    return makers[fmt](rng)


def _date(rng: random.Random) -> str:
    return (EARLIEST_DATE + timedelta(days=rng.randrange(DATE_SPAN_DAYS))).isoformat()


def _offset(rng: random.Random) -> str:
    minutes = rng.choice((0, 0, 60, -300, 330, 120, -480))
    if minutes == 0:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _time(rng: random.Random) -> str:
    moment = time(rng.randrange(24), rng.randrange(60), rng.randrange(60))
    fraction = f".{rng.randrange(1000):03d}" if rng.random() < 0.3 else ""
    return f"{moment.isoformat()}{fraction}{_offset(rng)}"


def _date_time(rng: random.Random) -> str:
    return f"{_date(rng)}T{_time(rng)}"


def is_rfc3339_date(value: str) -> bool:
    """A full-date of RFC 3339 (what JSON Schema's `date` format means)."""
    if not _RFC3339_DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_rfc3339_time(value: str) -> bool:
    """A full-time of RFC 3339: a time with seconds and an offset."""
    if not _RFC3339_TIME.fullmatch(value):
        return False
    try:
        time.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def is_rfc3339_date_time(value: str) -> bool:
    """A date-time of RFC 3339."""
    day, separator, clock = value[:10], value[10:11], value[11:]
    return separator in ("T", "t") and is_rfc3339_date(day) and is_rfc3339_time(clock)


def matching(pattern: str, low: int, high: int | None, rng: random.Random) -> str:
    """A string that `pattern` matches (re.search, as JSON Schema validators use it) of
    low..high code points."""
    try:
        tree = sre_parse.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise UnsupportedSchemaError(f"pattern {pattern!r} does not compile: {exc}") from exc
    for _ in range(PATTERN_TRIES):
        text = "".join(_walk(tree, rng))
        if low <= len(text) <= (len(text) if high is None else high):
            if not compiled.search(text):
                raise UnsupportedSchemaError(f"pattern {pattern!r} is not satisfiable here")
            return text
    raise UnsupportedSchemaError(
        f"no string of {low}..{high} characters found for pattern {pattern!r}")


def _walk(tree: Any, rng: random.Random) -> list[str]:
    parts: list[str] = []
    for op, value in tree:
        handler = _OPCODES.get(op)
        if handler is None:
            raise UnsupportedSchemaError(f"regex construct {op} is not supported")
        parts.extend(handler(value, rng))
    return parts


def _literal(value: int, rng: random.Random) -> list[str]:
    return [chr(value)]


def _not_literal(value: int, rng: random.Random) -> list[str]:
    return [rng.choice([c for c in PRINTABLE if ord(c) != value])]


def _any(value: None, rng: random.Random) -> list[str]:
    return [rng.choice(PRINTABLE)]


def _anchor(value: Any, rng: random.Random) -> list[str]:
    if value not in (sre.AT_BEGINNING, sre.AT_END, sre.AT_BEGINNING_STRING, sre.AT_END_STRING):
        raise UnsupportedSchemaError(f"regex anchor {value} is not supported")
    return []


def _branch(value: tuple[None, list[Any]], rng: random.Random) -> list[str]:
    return _walk(rng.choice(value[1]), rng)


def _group(value: tuple[Any, ...], rng: random.Random) -> list[str]:
    return _walk(value[-1], rng)


def _atomic(value: Any, rng: random.Random) -> list[str]:
    return _walk(value, rng)


def _repeat(value: tuple[int, Any, Any], rng: random.Random) -> list[str]:
    low, high, item = value
    if high is sre.MAXREPEAT:
        high = low + UNBOUNDED_REPEAT_EXTRA
    count = low if rng.random() < SHORTEST_SHARE else rng.randint(low, high)
    return [part for _ in range(count) for part in _walk(item, rng)]


def _in_class(items: list[tuple[Any, Any]], char: str) -> bool:
    for op, value in items:
        if op is sre.LITERAL and ord(char) == value:
            return True
        if op is sre.RANGE and value[0] <= ord(char) <= value[1]:
            return True
        if op is sre.CATEGORY and char in _category_chars(value):
            return True
    return False


def _category_chars(category: Any) -> str:
    if category in _CATEGORIES:
        return _CATEGORIES[category]
    if category in _NEGATED_CATEGORIES:
        excluded = _CATEGORIES[_NEGATED_CATEGORIES[category]]
        return "".join(c for c in PRINTABLE if c not in excluded)
    raise UnsupportedSchemaError(f"regex category {category} is not supported")


def _char_class(items: list[tuple[Any, Any]], rng: random.Random) -> list[str]:
    if items and items[0][0] is sre.NEGATE:
        allowed = [c for c in PRINTABLE if not _in_class(items[1:], c)]
        if not allowed:
            raise UnsupportedSchemaError("a negated character class excludes every character")
        return [rng.choice(allowed)]
    op, value = rng.choice(items)
    if op is sre.LITERAL:
        return [chr(value)]
    if op is sre.RANGE:
        return [chr(rng.randint(*value))]
    if op is sre.CATEGORY:
        return [rng.choice(_category_chars(value))]
    raise UnsupportedSchemaError(f"regex class item {op} is not supported")


_OPCODES: dict[Any, Callable[[Any, random.Random], list[str]]] = {
    sre.LITERAL: _literal,
    sre.NOT_LITERAL: _not_literal,
    sre.ANY: _any,
    sre.AT: _anchor,
    sre.BRANCH: _branch,
    sre.SUBPATTERN: _group,
    sre.ATOMIC_GROUP: _atomic,
    sre.MAX_REPEAT: _repeat,
    sre.MIN_REPEAT: _repeat,
    sre.POSSESSIVE_REPEAT: _repeat,
    sre.IN: _char_class,
}
