"""Posts for calendar slots: k slots per call, every post checked, failures regenerated.

The parts, each behind its own small interface:
- `prompting.py`: the reply models, the prompt (stable prefix first), the schema per batch;
- `judging.py`: whether a draft is accepted, and how many attempts a slot gets;
- `persistence.py`: the tweet file and the calendar, through the store's locked updates;
- `writer.py`: one persona's calls, verdicts, ledger rows and saves;
- `dispatcher.py`: when each batch goes out, across personas, under the concurrency window.
"""

from __future__ import annotations

import asyncio
import time

from ..calendar import ensure_calendar
from ..errors import PersonaFoundryError, RunStoppedError
from ..llm.session import LLMSession
from ..profile import load_profile
from ..store import claim_tweet_file
from ..store.layout import TWEETS_DIR
from ..textchecks import warm_up_checks
from .dispatcher import JUDGE_DELAY_S, JUDGE_QUIET_S, CallDispatcher, JudgePacing, _next_sender
from .judging import MAX_TWEET_ATTEMPTS
from .options import (
    DEFAULT_SLOTS_PER_CALL,
    PersonaTweets,
    TweetOptions,
    TweetProgress,
    TweetRunSummary,
)
from .prompting import MAX_TEXT_CHARS, TweetBatch, TweetDraft, _restrict_batch, tweet_messages
from .writer import PERSIST_INTERVAL_S, STAGE_NAME, PersonaWriter

__all__ = [
    "DEFAULT_SLOTS_PER_CALL",
    "JUDGE_DELAY_S",
    "JUDGE_QUIET_S",
    "MAX_TEXT_CHARS",
    "MAX_TWEET_ATTEMPTS",
    "PERSIST_INTERVAL_S",
    "STAGE_NAME",
    "TWEETS_DIR",
    "PersonaTweets",
    "TweetBatch",
    "TweetDraft",
    "TweetOptions",
    "TweetProgress",
    "TweetRunSummary",
    "_next_sender",
    "_restrict_batch",
    "claim_tweet_file",
    "generate_tweets",
    "tweet_messages",
]


async def _tweets_for(session: LLMSession, result: PersonaTweets, options: TweetOptions,
                      dispatcher: CallDispatcher, progress: TweetProgress | None) -> None:
    """Fill one persona's open slots into `result` (kept by the caller if the run stops)."""
    try:
        profile = load_profile(result.card)
        result.persona = profile.name
        calendar = await ensure_calendar(session, profile, options.month, options.out_dir,
                                         language=options.language, nsfw_level=options.nsfw_level)
    except RunStoppedError:
        raise
    except PersonaFoundryError as exc:
        result.error = str(exc)
        return
    # Failed slots are tried again: their failure may have been a passing one.
    slots = [slot for slot in calendar.slots if slot.status in ("planned", "failed")]
    slots = slots[: options.count]
    if len(slots) < options.count:
        result.error = (f"only {len(slots)} open slot(s) left in {options.month}; "
                        "use another --month for more")
    if not slots:
        return
    if progress:
        progress.add_total(len(slots))
    writer = PersonaWriter(session, profile, calendar, options, result, progress)
    writer.remember_earlier_posts()
    await dispatcher.fill(writer, writer.recover_unsaved(slots))


async def generate_tweets(options: TweetOptions, session: LLMSession,
                          progress: TweetProgress | None = None) -> TweetRunSummary:
    """Posts for every card under one session (one limit across all personas).

    A run that stops (budget, endpoint) returns what each persona got so far, with the error.
    """
    started = time.perf_counter()
    if progress:
        progress.watch(session.window_limit)
    # Load the language model while the month plans are being asked for.
    warm_up = asyncio.create_task(asyncio.to_thread(warm_up_checks))
    # Read at call time, so a test (or a caller) can change the pacing.
    pacing = JudgePacing(JUDGE_QUIET_S, JUDGE_DELAY_S)
    dispatcher = CallDispatcher(session.concurrency_window, options.slots_per_call, warm_up,
                                pacing)
    results = [PersonaTweets(card) for card in options.cards]
    fatal: str | None = None
    try:
        await session.check()
        await asyncio.gather(*[_tweets_for(session, result, options, dispatcher, progress)
                               for result in results])
        await warm_up
    except RunStoppedError as exc:
        await dispatcher.stop(exc)
        fatal = str(exc)
    return TweetRunSummary(results, time.perf_counter() - started, fatal,
                           session.pool.budget.spent_usd)
