"""Checks every generated post must pass: X's weighted length, language, hashtags, emoji, novelty.

Near-duplicates: Jaccard similarity of character 5-gram shingles (of the lower-cased text with
URLs, mentions and punctuation removed), candidates found by MinHash LSH and confirmed exactly.
A post that re-uses another with a few words changed scores about 0.45–0.9; two different posts
on the same pillar score under 0.15 (tests/test_textchecks.py holds such pairs), so 0.4 catches
rewordings and still leaves a wide margin before it would reject posts that share a topic.
Language: only a detection at ≥ 0.9 confidence counts (English fixtures score 0.45–0.99 as
English; a short post scoring low is not evidence of another language).
Voice: a post is the persona writing, so one that names the persona at its start ("Ms. Ly Thai
is planning…", what the default offline model wrote for a third of its posts) fails, and so does
one opening with the same first words as another post of the set (`opening`): posts that all
start alike read as a template however different their rest.
"""

from __future__ import annotations

import gc
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from datasketch import MinHash, MinHashLSH

with warnings.catch_warnings():
    # twitter-text-parser imports pkg_resources, deprecated (setuptools is pinned below 81).
    warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
    from twitter_text import extract_emojis_with_indices, parse_tweet

MAX_WEIGHTED_LENGTH = 280
NEAR_DUPLICATE_JACCARD = 0.4
SHINGLE_CHARS = 5
MINHASH_PERMUTATIONS = 128
# Only a confident detection on enough letters counts against a post: short posts are noisy.
LANGUAGE_CONFIDENCE = 0.9
LANGUAGE_MIN_LETTERS = 20
EMOJI_LIMITS: dict[str, int | None] = {"none": 0, "rare": 1, "moderate": 3, "heavy": None}
LANGUAGE_CODES: dict[str, str] = {
    "english": "en", "spanish": "es", "french": "fr", "german": "de", "italian": "it",
    "portuguese": "pt", "dutch": "nl", "russian": "ru", "ukrainian": "uk", "polish": "pl",
    "czech": "cs", "swedish": "sv", "norwegian": "no", "danish": "da", "finnish": "fi",
    "turkish": "tr", "greek": "el", "arabic": "ar", "hebrew": "he", "persian": "fa",
    "hindi": "hi", "bengali": "bn", "japanese": "ja", "korean": "ko", "chinese": "zh",
    "vietnamese": "vi", "thai": "th", "indonesian": "id", "malay": "ms", "romanian": "ro",
    "hungarian": "hu", "catalan": "ca", "tagalog": "tl", "swahili": "sw",
}
_DOT_LETTER = re.compile(r"\.[A-Za-z]")
_HASHTAG = re.compile(r"(?<!\w)#\w+", re.UNICODE)
_NOISE = re.compile(r"https?://\S+|@\w+|[^\w\s]", re.UNICODE)
OPENING_WORDS = 3
# Words within which a post may not name its persona (unless introducing itself: "I'm Ava").
NAME_OPENING_WORDS = 8
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame"})
_SELF_INTRODUCTIONS = ("i am", "im", "i m", "its", "it s", "this is", "my name is", "me")


@lru_cache(maxsize=4096)
def weighted_length(text: str) -> int:
    """X's weighted length (twitter-text v3: URLs 23, CJK and emoji 2)."""
    # Fast path, same answer: in ASCII every character weighs 1, and with no "x.y" and no "://"
    # there can be no URL; twitter-text's full parse costs ~0.5 ms a post.
    if text.isascii() and "\r" not in text and "://" not in text and not _DOT_LETTER.search(text):
        return len(text)
    return int(parse_tweet(text).weightedLength)


def fit_weighted(text: str) -> str:
    """The text cut at its last whole word that fits X's weighted length, or as it is when it
    fits. A schema's maxLength counts characters, X counts CJK, most accented Vietnamese
    letters and emoji twice: a backend that writes to the cap (a grammar stops it there,
    mid-word) can send 280 characters that weigh 281, and a small model re-asked sends the
    very same text again."""
    if weighted_length(text) <= MAX_WEIGHTED_LENGTH:
        return text
    words = text.split(" ")
    while len(words) > 1:
        words.pop()
        while len(words) > 1 and words[-1] in ("", "#", "@"):  # a tag or mention cut to nothing
            words.pop()
        cut = " ".join(words).rstrip(" ,;:-")
        if weighted_length(cut) <= MAX_WEIGHTED_LENGTH:
            return cut
    return text  # one word over the length: left for the check to report


def within_hashtags(text: str, allowed: int) -> str:
    """The text with the trailing hashtags past `allowed` dropped (the usual way a model
    overshoots: a run of tags at the end); hashtags inside its sentences are left for the
    check to report."""
    words = text.rstrip().split(" ")
    while hashtag_count(" ".join(words)) > allowed and len(words) > 1 and (
            _HASHTAG.fullmatch(words[-1]) or words[-1] == "#"):
        words.pop()
    return " ".join(words) if len(words) < len(text.rstrip().split(" ")) else text


def normalize_for_comparison(text: str) -> str:
    """Lower case, no URLs, mentions or punctuation, single spaces."""
    return " ".join(_NOISE.sub(" ", text.lower()).split())


def shingles(text: str) -> set[str]:
    """Character 5-grams of the normalized text."""
    norm = normalize_for_comparison(text)
    if len(norm) <= SHINGLE_CHARS:
        return {norm}
    return {norm[i:i + SHINGLE_CHARS] for i in range(len(norm) - SHINGLE_CHARS + 1)}


def jaccard(a: str, b: str) -> float:
    """Exact shingle Jaccard similarity (for tests and small sets)."""
    return shingle_jaccard(shingles(a), shingles(b))


def shingle_jaccard(left: set[str], right: set[str]) -> float:
    """Jaccard similarity of two shingle sets (two empty sets are alike)."""
    return len(left & right) / len(left | right) if left | right else 1.0


@cache
def _language_identifier() -> Any:
    from py3langid import langid  # noqa: PLC0415  # loads a 4 MB model; only when checking

    identifier = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
    # The model is ~10^5 long-lived Python objects: every full garbage collection would walk
    # them again and stall a run's event loop ~0.1 s. Move them (and what is loaded so far,
    # which lives as long) out of the collector's sight, once.
    gc.freeze()
    return identifier


def warm_up_checks() -> None:
    """Load the language model and LSH tables now (in a thread), not on the first post."""
    _lsh_setup()  # first: ~10 ms that each persona's duplicate index waits for
    _language_identifier()


def language_problem(text: str, language: str) -> str | None:
    """Why the post is not in `language`, when the detector is confident; else None."""
    expected = LANGUAGE_CODES.get(language.strip().lower(), language.strip().lower()[:2])
    letters = sum(1 for char in text if char.isalpha())
    if letters < LANGUAGE_MIN_LETTERS:
        return None
    detected, confidence = _language_identifier().classify(text)
    if detected != expected and confidence >= LANGUAGE_CONFIDENCE:
        return f"written in '{detected}', not {language}"
    return None


def hashtag_count(text: str) -> int:
    """Hashtags in a post."""
    return len(_HASHTAG.findall(text))


def emoji_count(text: str) -> int:
    """Emoji in a post (twitter-text's extractor)."""
    # Emoji are never ASCII; skipping the extractor for ASCII posts saves most of its cost.
    return 0 if text.isascii() else len(extract_emojis_with_indices(text))


def opening(text: str) -> str:
    """A post's first OPENING_WORDS words, normalised (hashtags and punctuation dropped)."""
    return " ".join(normalize_for_comparison(_HASHTAG.sub(" ", text)).split()[:OPENING_WORDS])


def _name_words(name: str) -> list[str]:
    words = normalize_for_comparison(name).split()
    while len(words) > 1 and words[0] in _HONORIFICS:
        words = words[1:]
    return words


def third_person_problem(text: str, name: str) -> str | None:
    """Why the post reads as written about `name` rather than by them: it names them within its
    first NAME_OPENING_WORDS words (the name without its honorific, or the surname after one),
    other than to introduce itself ("I'm Ava Stone, …"). None when it does not."""
    full = _name_words(name)
    if not full:
        return None
    words = normalize_for_comparison(text).split()
    honorific = normalize_for_comparison(name).split()[0]
    forms = [full] + ([[honorific, full[-1]]] if honorific in _HONORIFICS else [])
    introductions = tuple(f" {intro}" for intro in _SELF_INTRODUCTIONS)
    for start in range(min(NAME_OPENING_WORDS, len(words))):
        for form in forms:
            if words[start:start + len(form)] != form:
                continue
            begins = start - 1 if start and words[start - 1] in _HONORIFICS else start
            if not (" " + " ".join(words[max(0, begins - 3):begins])).endswith(introductions):
                return (f"names {name} in the third person at its start: write as {name}, in "
                        "the first person (I, my), as they would post it")
    return None


@dataclass(frozen=True)
class PostRules:
    """What a persona's posts must respect (`persona_name`: the name they may not open
    with in the third person; empty: not checked)."""

    language: str
    max_hashtags: int
    emoji_use: str
    persona_name: str = ""


def rule_problems(text: str, rules: PostRules) -> list[str]:
    """Length, language, hashtag and emoji problems of one post (empty when it passes)."""
    problems = []
    length = weighted_length(text)
    if length > MAX_WEIGHTED_LENGTH:
        problems.append(f"too long: weighted length {length} > {MAX_WEIGHTED_LENGTH}")
    if not text.strip():
        problems.append("empty")
    hashtags = hashtag_count(text)
    if hashtags > rules.max_hashtags:
        problems.append(f"{hashtags} hashtags, the strategy allows {rules.max_hashtags}")
    limit = EMOJI_LIMITS.get(rules.emoji_use)
    emoji = emoji_count(text)
    if limit is not None and emoji > limit:
        problems.append(f"{emoji} emoji, emoji use is '{rules.emoji_use}' (at most {limit})")
    wrong_language = language_problem(text, rules.language)
    if wrong_language:
        problems.append(wrong_language)
    third_person = third_person_problem(text, rules.persona_name) if rules.persona_name else None
    if third_person:
        problems.append(third_person)
    return problems


@cache
def _lsh_setup() -> tuple[tuple[int, int], Any]:
    """LSH bands/rows and hash permutations, computed once: both are costly and never change."""
    tuned = MinHashLSH(threshold=NEAR_DUPLICATE_JACCARD, num_perm=MINHASH_PERMUTATIONS)
    template = MinHash(num_perm=MINHASH_PERMUTATIONS)
    return (tuned.b, tuned.r), (template.permutations, template.scheme)


@cache
def _lsh_bands(threshold: float) -> tuple[int, int]:
    tuned = MinHashLSH(threshold=threshold, num_perm=MINHASH_PERMUTATIONS)
    return tuned.b, tuned.r


def new_lsh_index(threshold: float = NEAR_DUPLICATE_JACCARD) -> MinHashLSH:
    """An empty LSH index tuned to `threshold` (its bands computed once per process)."""
    params = _lsh_setup()[0] if threshold == NEAR_DUPLICATE_JACCARD else _lsh_bands(threshold)
    return MinHashLSH(num_perm=MINHASH_PERMUTATIONS, params=params)


def minhash(text: str) -> MinHash:
    """The MinHash signature of a text's shingles, with the shared permutations."""
    _, (permutations, scheme) = _lsh_setup()
    signature = MinHash(num_perm=MINHASH_PERMUTATIONS, permutations=permutations, scheme=scheme)
    signature.update_batch([shingle.encode("utf-8") for shingle in shingles(text)])
    return signature


class DuplicateIndex:
    """Everything a persona has posted or drafted; finds exact and near duplicates."""

    def __init__(self) -> None:
        self._lsh = new_lsh_index()
        self._exact: dict[str, str] = {}
        self._texts: dict[str, str] = {}
        self._signatures: dict[str, MinHash] = {}  # from find(), reused by add()

    def __len__(self) -> int:
        return len(self._texts)

    def _minhash(self, text: str) -> MinHash:
        return minhash(text)

    def find(self, text: str, *, ignore: str | None = None) -> str | None:
        """The earlier text this one duplicates (exactly or nearly), if any.

        `ignore` never counts: the text an edit replaces (the studio checks a post against
        every other post of its persona with one index, not one index per post).
        """
        exact = self._exact.get(normalize_for_comparison(text))
        if exact is not None and exact != ignore:
            return exact
        signature = self._minhash(text)
        self._signatures[text] = signature
        for key in self._lsh.query(signature):
            earlier = self._texts[key]
            if earlier != ignore and jaccard(text, earlier) >= NEAR_DUPLICATE_JACCARD:
                return earlier  # LSH proposes, exact decides
        return None

    def add(self, text: str) -> None:
        """Remember a text."""
        key = str(len(self._texts))
        normalized = normalize_for_comparison(text)
        if normalized in self._exact:
            return
        self._texts[key] = text
        self._exact[normalized] = text
        signature = self._signatures.pop(text, None) or self._minhash(text)
        self._signatures.clear()  # only the latest find() is ever added
        self._lsh.insert(key, signature)


class PairwiseIndex:
    """A few texts compared each with each by exact shingle Jaccard: for one reply or card,
    where a MinHash signature per text (one SHA-1 per shingle, then 128 permutations) costs
    more than comparing every pair outright. `find` and `add` as DuplicateIndex has them
    (without its `ignore`); nothing is ever left out of this one."""

    def __init__(self) -> None:
        self._exact: dict[str, str] = {}
        self._shingled: list[tuple[str, set[str]]] = []

    def find(self, text: str) -> str | None:
        """The earlier text this one duplicates (exactly or nearly), if any."""
        exact = self._exact.get(normalize_for_comparison(text))
        if exact is not None:
            return exact
        mine = shingles(text)
        for earlier, theirs in self._shingled:
            if shingle_jaccard(mine, theirs) >= NEAR_DUPLICATE_JACCARD:
                return earlier
        return None

    def add(self, text: str) -> None:
        """Remember a text."""
        normalized = normalize_for_comparison(text)
        if normalized not in self._exact:
            self._exact[normalized] = text
            self._shingled.append((text, shingles(text)))


def opening_problem(text: str, openings: dict[str, str]) -> str | None:
    """Why `text` opens like a post in `openings` (opening → that post's name), if it does."""
    first = opening(text)
    if first and first in openings:
        return f"opens like {openings[first]} ('{first}…'): start differently"
    return None


def set_problems(texts: Sequence[str], rules: PostRules | None,
                 earlier: DuplicateIndex | None = None,
                 labels: Sequence[str] = (), *, openings: bool = False) -> dict[int, list[str]]:
    """Each failing text's problems (by index): its rules, then whether it repeats a text
    before it in `texts` (or in `earlier`, which is left unchanged) and, with `openings`,
    whether it opens with the first words of a text before it.

    One pass over a whole set, so a reply or a card that repeats itself is caught at once,
    each copy naming the text it copies (by its label, else its index).
    """
    index, first_seen = PairwiseIndex(), dict[str, int]()
    first_words: dict[str, str] = {}
    problems: dict[int, list[str]] = {}
    for number, text in enumerate(texts):
        name = labels[number] if number < len(labels) else f"text {number}"
        found = rule_problems(text, rules) if rules is not None else []
        copied = earlier.find(text) if earlier is not None else None
        if copied is not None:
            found.append(f"too similar to an earlier post: {copied[:80]!r}")
        twin = index.find(text)
        if twin is not None:
            first = first_seen[twin]
            twin_name = labels[first] if first < len(labels) else f"text {first}"
            found.append(f"too similar to {twin_name}: {twin[:80]!r}")
        elif openings and (same_start := opening_problem(text, first_words)):
            found.append(same_start)
        if found:
            problems[number] = found
        if twin is None:
            index.add(text)
            first_seen.setdefault(text, number)
        if openings and not found:
            first_words.setdefault(opening(text), name)
    return problems
