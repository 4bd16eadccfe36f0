"""Sampling controls per call kind, and which of them each backend is sent.

Posts are where repetition shows (the default offline model repeated one post for four slots
and copied the example posts word for word), so their calls get penalties against it:
OpenAI's presence and frequency penalties, which every OpenAI-compatible server accepts, and
on the embedded llama.cpp server also DRY ("don't repeat yourself": it penalises extending a
token sequence that already occurred in the context, the prompt's example posts included).
DRY's default sequence breakers (newline, ':', '"', '*') end a sequence at every JSON quote,
so the keys a schema repeats in every item are not what it penalises. Other calls (persona
stages, calendars) keep the plain settings. The judge samples greedily: a verdict should not
depend on the dice.
"""

from __future__ import annotations

from dataclasses import dataclass

OPENAI_SAMPLING_KEYS = frozenset({"presence_penalty", "frequency_penalty"})
# llama.cpp's server reads its own samplers from the same chat-completions body.
LLAMA_CPP_SAMPLING_KEYS = OPENAI_SAMPLING_KEYS | {
    "repeat_penalty", "repeat_last_n", "dry_multiplier", "dry_base", "dry_allowed_length",
    "dry_penalty_last_n",
}
Penalties = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Sampling:
    """How one kind of call samples: a temperature (None: the settings') and extra controls."""

    temperature: float | None = None
    penalties: Penalties = ()


POST_SAMPLING = Sampling(penalties=(
    ("presence_penalty", 0.3), ("frequency_penalty", 0.2),
    # DRY as its authors suggest (multiplier 0.8, base 1.75); sequences of up to 3 tokens are
    # free, so a name or a hashtag may come back. Its window stays the server's default, the
    # whole context: the request may not say so (xllamacpp rejects dry_penalty_last_n = -1).
    ("dry_multiplier", 0.8), ("dry_base", 1.75), ("dry_allowed_length", 3.0),
))
SAMPLING: dict[str, Sampling] = {
    "tweets": POST_SAMPLING,
    "example_tweets": POST_SAMPLING,
    "quality_judge": Sampling(temperature=0.0),
}
DEFAULT_SAMPLING = Sampling()


def sampling_for(stage: str) -> Sampling:
    """The sampling of a call kind (the settings' temperature and no penalties by default)."""
    return SAMPLING.get(stage, DEFAULT_SAMPLING)
