"""Diversity measures of a set of posts: pure, deterministic, offline.

The measures follow Shaib et al. 2024, "Standardizing the measurement of text diversity"
(arXiv 2403.00553): distinct-n, n-gram diversity (distinct-n summed over n = 1..4), gzip
compression ratio, self-repetition of 4-grams, and self-BLEU; plus two of ours that point at
single posts: the share of posts sharing a long (6-word) n-gram with another post, and the
share of near duplicates under the very check `tweets` rejects them with (textchecks.py).

Why not PyPI's `diversity` 0.3.1, the paper's own package: `import diversity` loads
sentence-transformers, spaCy, `evaluate` and rouge-score at once and pins transformers < 5
(this project's image stack runs transformers 5), and its BLEU and BERTScore come from
`evaluate.load`, which fetches metric code from the Hugging Face hub at run time. The measures
it implements in pure Python are a few lines each; they are written here to the same
definitions, except where noted (n-grams never span two posts; one gzip pass, not two).
"""

from __future__ import annotations

import bisect
import gzip
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..textchecks import DuplicateIndex, normalize_for_comparison

MAX_NGRAM = 4  # BLEU-4 and n-gram diversity up to 4, as in Shaib et al.
LONG_NGRAM_WORDS = 6  # six words in a row shared by two posts is a copied phrase, not a topic
SELF_REPETITION_N = 4
# Chen & Cherry 2014, smoothing 1: an n-gram order with no match counts as 0.1 matches.
BLEU_EPSILON = 0.1
Tokens = list[str]
NGram = tuple[str, ...]


def words(text: str) -> Tokens:
    """The post's words: lower case, no URLs, mentions or punctuation (as the duplicate check)."""
    return normalize_for_comparison(text).split()


def ngrams(tokens: Sequence[str], n: int) -> list[NGram]:
    """The post's word n-grams, in order."""
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(docs: Sequence[Tokens], n: int) -> float:
    """Unique n-grams / all n-grams over the set (1.0 = nothing repeats; 0 for no n-grams)."""
    grams = [gram for doc in docs for gram in ngrams(doc, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def ngram_diversity(docs: Sequence[Tokens], max_n: int = MAX_NGRAM) -> float:
    """distinct-n summed over n = 1..max_n (Shaib et al.'s NGD; max_n when nothing repeats)."""
    return sum(distinct_n(docs, n) for n in range(1, max_n + 1))


def compression_ratio(texts: Sequence[str]) -> float:
    """Size of the posts joined / size gzipped: repetitive text compresses more (higher = worse)."""
    data = " ".join(texts).encode("utf-8")
    return len(data) / len(gzip.compress(data, mtime=0)) if data else 0.0


def self_repetition(docs: Sequence[Tokens], n: int = SELF_REPETITION_N) -> float:
    """Mean over posts of log(1 + how often its n-grams occur in the other posts)."""
    if not docs:
        return 0.0
    unique = [set(ngrams(doc, n)) for doc in docs]
    counts = Counter(gram for grams in unique for gram in grams)
    return sum(math.log(sum(counts[g] for g in grams) - len(grams) + 1)
               for grams in unique) / len(docs)


def long_ngram_sharers(docs: Sequence[Tokens], n: int = LONG_NGRAM_WORDS) -> list[bool]:
    """For each post, whether it shares an n-gram of n words with another post."""
    unique = [set(ngrams(doc, n)) for doc in docs]
    counts = Counter(gram for grams in unique for gram in grams)
    return [any(counts[gram] > 1 for gram in grams) for grams in unique]


def near_duplicate_partners(texts: Sequence[str]) -> list[str | None]:
    """For each post, the earlier post it nearly duplicates (textchecks' rule), else None."""
    index = DuplicateIndex()
    partners = []
    for text in texts:
        partners.append(index.find(text))
        index.add(text)
    return partners


class _ReferenceCounts:
    """Per n-gram, the two largest counts of any group, for clipping against 'every group but
    mine' in O(1): each post's references are all posts outside its group."""

    def __init__(self, counts: Sequence[Counter[NGram]], groups: Sequence[int]) -> None:
        best: dict[NGram, dict[int, int]] = {}
        for doc_counts, group in zip(counts, groups, strict=True):
            for gram, count in doc_counts.items():
                by_group = best.setdefault(gram, {})
                by_group[group] = max(by_group.get(group, 0), count)
        self._top = {gram: sorted(((c, g) for g, c in by_group.items()), reverse=True)[:2]
                     for gram, by_group in best.items()}

    def clip(self, gram: NGram, group: int) -> int:
        """The most times any reference outside `group` holds `gram`."""
        for count, owner in self._top.get(gram, ()):
            if owner != group:
                return count
        return 0


def _closest_length(lengths: list[tuple[int, int]], length: int, group: int) -> int | None:
    """The reference length closest to `length` (shorter on ties) outside `group`."""
    position = bisect.bisect_left(lengths, (length, -1))
    best: int | None = None
    for step in (-1, 1):
        i = position if step == 1 else position - 1
        while 0 <= i < len(lengths) and lengths[i][1] == group:
            i += step
        if 0 <= i < len(lengths):
            candidate = lengths[i][0]
            if best is None or (abs(candidate - length), candidate) < (abs(best - length), best):
                best = candidate
    return best


def group_bleu(docs: Sequence[Tokens], groups: Sequence[int] | None = None) -> list[float]:
    """Each post's BLEU-4 against every post outside its group as references (its own group by
    default: self-BLEU; a persona's posts against other personas: homogenisation).

    Multi-reference BLEU as in NLTK's sentence_bleu: clipped n-gram precisions, the closest
    reference length for the brevity penalty, smoothing method 1. 0 for a post with no words
    or no references.
    """
    groups = list(groups) if groups is not None else list(range(len(docs)))
    scores = [0.0] * len(docs)
    orders = {n: [Counter(ngrams(doc, n)) for doc in docs] for n in range(1, MAX_NGRAM + 1)}
    references = {n: _ReferenceCounts(counts, groups) for n, counts in orders.items()}
    lengths = sorted((len(doc), group) for doc, group in zip(docs, groups, strict=True))
    for i, (doc, group) in enumerate(zip(docs, groups, strict=True)):
        reference_length = _closest_length(lengths, len(doc), group)
        top = min(MAX_NGRAM, len(doc))
        if not top or reference_length is None:
            continue
        log_precision = 0.0
        for n in range(1, top + 1):
            counts = orders[n][i]
            matched = sum(min(c, references[n].clip(g, group)) for g, c in counts.items())
            total = sum(counts.values())
            log_precision += math.log((matched or BLEU_EPSILON) / total) / top
        brevity = 1.0 if len(doc) > reference_length else math.exp(1 - reference_length / len(doc))
        scores[i] = brevity * math.exp(log_precision)
    return scores


@dataclass(frozen=True)
class DiversityScores:
    """The set-level measures of one set of posts, and the per-post facts behind them."""

    posts: int
    distinct_1: float
    distinct_2: float
    ngram_diversity: float
    compression_ratio: float
    self_repetition: float
    long_ngram_share: float
    self_bleu: float
    near_duplicate_share: float
    post_bleu: tuple[float, ...]
    partners: tuple[str | None, ...]
    long_ngram: tuple[bool, ...]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def diversity_scores(texts: Sequence[str], groups: Sequence[int] | None = None) -> DiversityScores:
    """Every diversity measure of `texts` (BLEU references: outside each post's group)."""
    docs = [words(text) for text in texts]
    bleu = group_bleu(docs, groups)
    partners = near_duplicate_partners(texts)
    sharers = long_ngram_sharers(docs)
    return DiversityScores(
        posts=len(texts), distinct_1=distinct_n(docs, 1), distinct_2=distinct_n(docs, 2),
        ngram_diversity=ngram_diversity(docs), compression_ratio=compression_ratio(texts),
        self_repetition=self_repetition(docs), long_ngram_share=_mean([float(s) for s in sharers]),
        self_bleu=_mean(bleu),
        near_duplicate_share=_mean([float(p is not None) for p in partners]),
        post_bleu=tuple(bleu), partners=tuple(partners), long_ngram=tuple(sharers),
    )
