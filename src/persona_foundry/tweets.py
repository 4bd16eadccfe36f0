"""Posts for calendar slots: k slots per call, every post checked, failures regenerated.

The prompt puts what is stable for a persona (instructions, persona, strategy, voice, examples)
first and the slots last, so providers' prompt caches hit across a persona's calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from .calendar import calendar_path, ensure_calendar
from .errors import LLMError, PersonaFoundryError, RunStoppedError
from .files import atomic_write_json
from .ledger.calls import TweetRecordRow
from .llm.schema_edit import edit_node, with_keywords
from .llm.session import LLMSession
from .profile import PersonaProfile, load_profile
from .stages.base import NSFW_RULES, NsfwLevel
from .store import Calendar, Slot, update_calendar
from .textchecks import (
    MAX_WEIGHTED_LENGTH,
    DuplicateIndex,
    PostRules,
    rule_problems,
    warm_up_checks,
    weighted_length,
)

TWEETS_DIR = "tweets"
STAGE_NAME = "tweets"
DEFAULT_SLOTS_PER_CALL = 8
MAX_TWEET_ATTEMPTS = 3
MAX_TEXT_CHARS = 500
# Saving rewrites the whole file and the calendar: at most this often (and at the end). A crash
# in between loses no money: each accepted post is already in the ledger, and a rerun takes it
# from there (recover_unsaved) instead of asking again.
PERSIST_INTERVAL_S = 2.0
# Replies come in bursts, and every reply starts the next call. Judging a reply (~2 ms of CPU)
# while others wait to be read would leave the server's freed slots idle meanwhile; so replies
# are judged one at a time, once none has come in for JUDGE_QUIET_S (the client's turnaround
# of a reply into the next request), and at most JUDGE_DELAY_S after their own came in; at once
# when no slot is left to send (then no call waits on them, and judging sooner ends the run
# sooner).
JUDGE_QUIET_S = 0.004
JUDGE_DELAY_S = 0.25


class TweetDraft(BaseModel):
    """One post for one slot."""

    slot_id: str = Field(max_length=20, description="the slot's id, exactly as given")
    # Room beyond 280: an over-long post fails its own length check and only its slot is
    # regenerated, instead of the whole batch failing validation.
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS,
                      description="the post, at most 280 characters")
    image_prompt: str = Field(
        max_length=300, description="for image slots: the photo to attach; else empty"
    )


class TweetBatch(BaseModel):
    """Posts for the slots of one call."""

    tweets: list[TweetDraft] = Field(min_length=1, max_length=32, description="one per slot")

    @field_validator("tweets", mode="after")
    @classmethod
    def _known_slots(cls, tweets: list[TweetDraft], info: ValidationInfo) -> list[TweetDraft]:
        wanted = set((info.context or {}).get("slot_ids", []))
        kept = [tweet for tweet in tweets if not wanted or tweet.slot_id in wanted]
        if not kept:
            raise ValueError(f"use the given slot ids: {sorted(wanted)}")
        return list({tweet.slot_id: tweet for tweet in kept}.values())


@dataclass(frozen=True)
class TweetOptions:
    """What one `tweets` command asks for."""

    cards: list[Path]
    out_dir: Path
    month: str
    count: int = 30
    slots_per_call: int = DEFAULT_SLOTS_PER_CALL
    language: str = "English"
    nsfw_level: NsfwLevel = "off"


@dataclass
class PersonaTweets:
    """One persona's result."""

    card: Path
    persona: str = ""
    tweet_file: Path | None = None
    made: int = 0
    regenerated: int = 0
    failed: int = 0
    duplicates: int = 0
    recovered: int = 0  # accepted by an earlier run that died before saving them
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class TweetRunSummary:
    """The whole command's result."""

    personas: list[PersonaTweets]
    wall_s: float
    fatal_error: str | None = None
    cost_usd: float = 0.0

    @property
    def made(self) -> int:
        """Posts written."""
        return sum(p.made for p in self.personas)

    @property
    def exit_code(self) -> int:
        """0 all done; 1 some post or persona failed; 2 nothing could run."""
        if self.fatal_error or (not self.made and any(p.error for p in self.personas)):
            return 2
        return 1 if any(p.failed or p.error for p in self.personas) else 0


class TweetProgress(Protocol):
    """What a progress display hears."""

    def add_total(self, slots: int) -> None:
        """More slots to fill."""

    def advance(self, slots: int) -> None:
        """Slots finished (drafted or failed)."""

    def watch(self, window: Callable[[], int | None]) -> None:
        """Where to read the current concurrency window."""


def claim_tweet_file(folder: Path, persona: str) -> Path:
    """A new, never-before-used file name, claimed atomically (O_EXCL) even across processes."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S_%f")
    for number in range(1, 10_000):
        suffix = "" if number == 1 else f"-{number}"
        candidate = folder / f"{persona}_{stamp}{suffix}.json"
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        return candidate
    raise PersonaFoundryError(f"cannot find a free tweet file name in {folder}")


def _persona_block(profile: PersonaProfile) -> str:
    strategy = profile.strategy.model_dump(mode="json")
    parts = [f"## Persona\n{profile.summary}", f"## Strategy\n{json.dumps(strategy)}"]
    if profile.authenticity:
        parts.append(f"## Habits\n{profile.authenticity.model_dump_json()}")
    if profile.example_posts:
        parts.append("## Their earlier posts (match the voice, never repeat them)\n"
                     + "\n".join(f"- {post}" for post in profile.example_posts))
    if profile.visual:
        parts.append(f"## Their look, for image prompts\n{profile.visual.prompt_base}")
    return "\n\n".join(parts)


def tweet_messages(profile: PersonaProfile, calendar: Calendar, slots: list[Slot],
                   options: TweetOptions, feedback: dict[str, str]) -> list[dict[str, str]]:
    """System and persona first (identical for every call of a persona), the slots last."""
    system = (
        f"You are {profile.name} (@{profile.handle}) writing your own posts on X. Write every post "
        f"in {options.language}, at most 280 characters, in your own voice. Every person is an "
        f"adult. {NSFW_RULES[options.nsfw_level]} Reply with one JSON object that matches the "
        "given JSON schema, and nothing else: one post per slot, with the slot's id."
    )
    events = {event.id: event for event in calendar.events}
    lines = []
    for slot in slots:
        event = events.get(slot.event_id or "")
        about = f"{event.title}: {event.description}" if event else slot.theme
        line = (f"- id {slot.id}, {slot.scheduled_at}, pillar {slot.pillar}, about {about}, "
                f"format {slot.format}")
        if slot.id in feedback:
            line += f". {feedback[slot.id]}"
        lines.append(line)
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": f"{_persona_block(profile)}\n\n## Slots\n" + "\n".join(lines)},
    ]


def _tweet_record(slot: Slot, draft: TweetDraft, model: str, attempt: int) -> dict[str, Any]:
    return {
        "id": f"{slot.id}", "slot_id": slot.id, "scheduled_at": slot.scheduled_at,
        "pillar": slot.pillar, "theme": slot.theme, "format": slot.format, "text": draft.text,
        "image_prompt": draft.image_prompt if slot.format == "image" else "",
        "weighted_length": weighted_length(draft.text),
        "generation": {"model": model, "attempt": attempt},
    }


def _recovered_record(record_json: str | None, slot: Slot) -> dict[str, Any] | None:
    """A ledger's post record, if it was written for this very slot (same time, pillar, theme
    and format: a re-planned month may reuse an id for another slot)."""
    if record_json is None:
        return None
    try:
        record = json.loads(record_json)
    except ValueError:
        return None
    wanted = {"slot_id": slot.id, "scheduled_at": slot.scheduled_at, "pillar": slot.pillar,
              "theme": slot.theme, "format": slot.format}
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return None
    return record if all(record.get(key) == value for key, value in wanted.items()) else None


def _restrict_batch(batch: list[Slot]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Ask for exactly one post per slot of `batch`, in order, and nothing else.

    `prefixItems` gives position i the slot id `const` of slot i, and `minItems` = `maxItems` =
    the batch size, so a reply can neither skip a slot, repeat one nor invent one; a text slot's
    image prompt is pinned empty. No `items` beside it: llama.cpp's LLGuidance then applies
    `items` to every position and ignores `prefixItems` (seen with xllamacpp 2026.10), and with
    the count pinned no position is left for `items` to govern anyway.
    """

    def one_per_slot(tweets: dict[str, Any]) -> dict[str, Any]:
        kept = {key: value for key, value in tweets.items() if key != "items"}
        return {**kept, "prefixItems": [_slot_item(tweets["items"], slot) for slot in batch],
                "minItems": len(batch), "maxItems": len(batch)}

    def adjust(schema: dict[str, Any]) -> dict[str, Any]:
        return edit_node(schema, ("tweets",), one_per_slot)

    return adjust


def _slot_item(item: dict[str, Any], slot: Slot) -> dict[str, Any]:
    """The item schema of one slot's post: its id fixed, at most MAX_WEIGHTED_LENGTH characters
    (a weighted length can still pass it: CJK and emoji weigh 2; that slot alone is redone), and
    an image prompt that an image slot must have and a text slot must leave empty."""
    pinned = with_keywords(item, ("slot_id",), const=slot.id)
    pinned = with_keywords(pinned, ("text",), maxLength=MAX_WEIGHTED_LENGTH)
    if slot.format == "image":
        return with_keywords(pinned, ("image_prompt",), minLength=1)
    return with_keywords(pinned, ("image_prompt",), maxLength=0)


class _PersonaTweeter:
    """Fills one persona's slots: batches, checks, regeneration, file and calendar updates."""

    def __init__(self, session: LLMSession, profile: PersonaProfile, calendar: Calendar,
                 options: TweetOptions, result: PersonaTweets,
                 progress: TweetProgress | None) -> None:
        self.session, self.profile, self.calendar = session, profile, calendar
        self.options, self.result, self.progress = options, result, progress
        self.rules = PostRules(options.language, profile.strategy.max_hashtags_per_tweet,
                               profile.strategy.emoji_use)
        self.seen = DuplicateIndex()
        self.records: list[dict[str, Any]] = []
        self.attempts: Counter[str] = Counter()
        self.feedback: dict[str, str] = {}
        self.calendar_file = calendar_path(options.out_dir, profile.key, options.month)
        self.tweet_file = claim_tweet_file(options.out_dir / TWEETS_DIR, profile.key)
        self._persisted_at = time.monotonic()
        self.pending: deque[Slot] = deque()
        self.calls_out = 0
        result.tweet_file = self.tweet_file

    def remember_earlier_posts(self) -> None:
        """Example posts, other tweet files and already drafted slots all count as taken."""
        for text in self.profile.example_posts:
            self.seen.add(text)
        for path in sorted((self.options.out_dir / TWEETS_DIR).glob(f"{self.profile.key}_*.json")):
            if path == self.tweet_file or path.stat().st_size == 0:
                continue
            try:
                for tweet in json.loads(path.read_text(encoding="utf-8")).get("tweets", []):
                    self.seen.add(str(tweet.get("text", "")))
            except (OSError, ValueError, AttributeError):
                continue  # a foreign or broken file is not a reason to stop

    def recover_unsaved(self, slots: list[Slot]) -> list[Slot]:
        """Take posts an earlier run accepted (and paid for) but died before saving from the
        ledger, instead of asking for them again; return the slots still to write."""
        saved = self.session.ledger.drafted_posts(self.profile.key, [slot.id for slot in slots])
        left = []
        for slot in slots:
            record = _recovered_record(saved.get(slot.id), slot)
            if record is None or self.seen.find(record["text"]) is not None:
                left.append(slot)
                continue
            self.seen.add(record["text"])
            self.records.append(record)
            self.result.made += 1
            self.result.recovered += 1
            if self.progress:
                self.progress.advance(1)
        if len(left) < len(slots):
            self._persist()
        return left

    def take(self, size: int) -> list[Slot]:
        """The next batch: slots to retry first, then fresh ones in calendar order."""
        batch = [self.pending.popleft() for _ in range(min(size, len(self.pending)))]
        self.calls_out += 1
        return batch

    async def call(self, batch: list[Slot]) -> tuple[TweetBatch | str, tuple[int, int]]:
        """One LLM call for `batch`: the reply, or why it failed (RunStoppedError is raised)."""
        ids = [slot.id for slot in batch]
        try:
            done = await self.session.call(
                TweetBatch, tweet_messages(self.profile, self.calendar, batch, self.options,
                                           self.feedback),
                stage=STAGE_NAME, persona=self.profile.key, context={"slot_ids": ids},
                adjust_schema=_restrict_batch(batch),
            )
        except RunStoppedError:
            raise
        except LLMError as exc:
            return str(exc), (0, 0)
        return done.output, (done.prompt_tokens, done.completion_tokens)

    def settle(self, batch: list[Slot], reply: TweetBatch | str | None,
               tokens: tuple[int, int]) -> None:
        """Judge a call's reply (None: the run stopped first); rejected slots go first in line."""
        self.calls_out -= 1
        if reply is not None:
            self.pending.extendleft(reversed(self._judge(batch, reply, tokens)))

    def save(self, *, now: bool) -> None:
        """Persist now, or if the last save is PERSIST_INTERVAL_S old."""
        if now or time.monotonic() - self._persisted_at >= PERSIST_INTERVAL_S:
            self._persist()

    def _judge(self, batch: list[Slot], reply: TweetBatch | str,
               tokens: tuple[int, int]) -> list[Slot]:
        """Accept the good drafts; return the slots to try again."""
        self.result.prompt_tokens += tokens[0]
        self.result.completion_tokens += tokens[1]
        drafts = {} if isinstance(reply, str) else {t.slot_id: t for t in reply.tweets}
        share = (tokens[0] / len(batch), tokens[1] / len(batch))
        retry = []
        for slot in batch:
            self.attempts[slot.id] += 1
            problems = self._problems(slot, drafts.get(slot.id), reply)
            status = "drafted" if not problems else "rejected"
            record = None
            if not problems:
                draft = drafts[slot.id]
                self.seen.add(draft.text)
                record = _tweet_record(slot, draft, self.session.model_for(STAGE_NAME),
                                       self.attempts[slot.id])
                self.records.append(record)
                self.result.made += 1
            elif self.attempts[slot.id] < MAX_TWEET_ATTEMPTS:
                # The attempt number makes each retry a new request (never a cached reply).
                self.feedback[slot.id] = (
                    f"Draft {self.attempts[slot.id]} was rejected ({problems}): write a new one."
                )
                self.result.regenerated += 1
                retry.append(slot)
            else:
                status = "failed"
                self.result.failed += 1
                self.result.failures[slot.id] = problems
            self.session.ledger.record_tweet(TweetRecordRow(
                self.session.run_id, self.profile.key, slot.id, status,
                str(self.tweet_file), problems or None, *share,
                record_json=json.dumps(record) if record else None))
            if status != "rejected" and self.progress:
                self.progress.advance(1)
        return retry

    def _problems(self, slot: Slot, draft: TweetDraft | None, reply: TweetBatch | str) -> str:
        if isinstance(reply, str):
            return f"the call failed: {reply}"
        if draft is None:
            return "the reply had no post for this slot"
        problems = rule_problems(draft.text, self.rules)
        if slot.format == "image" and not draft.image_prompt.strip():
            problems.append("an image slot needs an image_prompt")
        earlier = None if problems else self.seen.find(draft.text)
        if earlier is not None:
            self.result.duplicates += 1
            problems.append(f"too similar to an earlier post: {earlier[:80]!r}")
        return "; ".join(problems)

    def _persist(self) -> None:
        """Rewrite this run's tweet file and mark its slots in the calendar (locked)."""
        self._persisted_at = time.monotonic()
        atomic_write_json(self.tweet_file, {
            "persona": self.profile.name, "persona_key": self.profile.key,
            "handle": self.profile.handle, "month": self.options.month,
            "timezone": self.profile.timezone, "run_id": self.session.run_id,
            "tweets": self.records,
        })
        drafted = {record["slot_id"]: record["text"] for record in self.records}
        failures = dict(self.result.failures)

        def mark(calendar: Calendar) -> None:
            for slot in calendar.slots:
                if slot.id in drafted and slot.status in ("planned", "failed"):
                    slot.status, slot.tweet_file = "drafted", str(self.tweet_file)
                    slot.text, slot.failure = drafted[slot.id], None
                elif slot.id in failures and slot.status == "planned":
                    slot.status, slot.failure = "failed", failures[slot.id]

        update_calendar(self.calendar_file, mark)


def _apportion_calls(calls: dict[_PersonaTweeter, int], pending: dict[_PersonaTweeter, int],
                     total: int) -> None:
    """Raise the personas' call counts towards `total`, in proportion to their slots (largest
    remainder first; never more calls than slots)."""
    left = sum(pending.values())
    if not left:
        return
    wanted = {tweeter: total * count / left for tweeter, count in pending.items()}
    for tweeter, count in pending.items():
        calls[tweeter] = max(calls[tweeter], min(count, int(wanted[tweeter])))
    by_remainder = sorted(pending, key=lambda t: wanted[t] - int(wanted[t]), reverse=True)
    for tweeter in by_remainder:
        if sum(calls.values()) >= total:
            return
        if calls[tweeter] < pending[tweeter]:
            calls[tweeter] += 1


def _next_sender(waiting: list[_PersonaTweeter],
                 sizes: dict[_PersonaTweeter, deque[int]]) -> _PersonaTweeter:
    """The persona whose next planned call is largest (then: with the most slots left). The
    larger calls, sent in a row, fall one to each slot of the window as the slots free in
    turn; sent as they come they doubled up on some slots, which then ran ~0.1 s longer."""
    return max(waiting, key=lambda tweeter: (sizes[tweeter][0], len(tweeter.pending)))


class _CallDispatcher:
    """Sends every persona's post calls, one batch whenever the concurrency window has room.

    The slots left are planned as whole rounds of the window (as few as `slots_per_call`
    allows), each persona's in calls of about one size, the odd slots one each to its first
    calls: every slot of the window then does about the same work and ends its last call when
    the others do, instead of a last round of a few calls with most of the window idle (1000
    posts, 20 at once, up to 8 per call: 7 calls of 7 or 8 posts for every slot, not 6 rounds
    of 8 and a seventh of 40 posts). Rejected slots are sent again at once, first in their
    persona's line, in the calls planned next; the larger calls go first, across personas.
    One call more than the window is kept out (it waits in the pool), so a freed slot is
    taken at once rather than after the client's turnaround.
    """

    def __init__(self, session: LLMSession, slots_per_call: int,
                 checks_ready: Awaitable[object]) -> None:
        self.session, self.slots_per_call = session, slots_per_call
        self.checks_ready = checks_ready
        # Each persona's planned calls: their sizes, in sending order.
        self._sizes: dict[_PersonaTweeter, deque[int]] = {}
        self._planned_window = 0
        self._sent = 0
        self.ended_by: Exception | None = None
        self._tweeters: dict[_PersonaTweeter, asyncio.Event] = {}
        self._calls: set[asyncio.Task[None]] = set()  # waiting for their reply
        self._tasks: set[asyncio.Task[None]] = set()  # until their reply is judged
        self._judging = asyncio.Lock()
        self._last_reply_at = 0.0

    async def fill(self, tweeter: _PersonaTweeter, slots: list[Slot]) -> None:
        """Draft `slots`; returns when each is drafted or failed, raises what ended the run."""
        if not slots:
            return
        finished = asyncio.Event()
        tweeter.pending.extend(slots)
        self._tweeters[tweeter] = finished
        self._planned_window = 0  # plan again, with these slots
        self._send()
        if self.ended_by is None:
            await finished.wait()
        if self.ended_by is not None:
            tweeter.save(now=True)
            raise self.ended_by

    async def stop(self, reason: Exception) -> None:
        """Send nothing more; judge and save the calls already out."""
        self.ended_by = self.ended_by or reason
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _window(self) -> int:
        return self.session.pool.limiter.limit

    def _send(self) -> None:
        while self.ended_by is None and len(self._calls) < self._window() + 1:
            waiting = [tweeter for tweeter in self._tweeters if tweeter.pending]
            if not waiting:
                return
            self._keep_plan(waiting)
            tweeter = _next_sender(waiting, self._sizes)
            batch = tweeter.take(self._sizes[tweeter].popleft())
            self._sent += 1
            task = asyncio.create_task(self._call(tweeter, batch))
            self._calls.add(task)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _keep_plan(self, waiting: list[_PersonaTweeter]) -> None:
        """Plan again when the window or the slots changed; rejected slots join planned calls."""
        planned = {tweeter: sum(self._sizes.get(tweeter, ())) for tweeter in waiting}
        if self._window() != self._planned_window or any(
                len(tweeter.pending) < planned[tweeter] or not planned[tweeter]
                for tweeter in waiting):
            self._plan()
            return
        for tweeter in waiting:
            if len(tweeter.pending) > planned[tweeter]:
                self._plan_more(self._sizes[tweeter], len(tweeter.pending) - planned[tweeter])

    def _plan(self) -> None:
        """Each persona's slots left as calls of about one size, so many that the run's calls
        come to a whole number of rounds of the window, as few as `slots_per_call` allows
        (one stream: full calls)."""
        window = self._planned_window = self._window()
        pending = {tweeter: len(tweeter.pending) for tweeter in self._tweeters}
        fewest = {tweeter: -(-count // self.slots_per_call) for tweeter, count in pending.items()}
        calls = dict(fewest)
        if window > 1:
            rounds = -(-(self._sent + sum(fewest.values())) // window)
            _apportion_calls(calls, pending, window * rounds - self._sent)
        for tweeter, count in pending.items():
            if window == 1:
                full, rest = divmod(count, self.slots_per_call)
                self._sizes[tweeter] = deque([self.slots_per_call] * full + [rest] * (rest > 0))
            else:
                smaller, larger = divmod(count, calls[tweeter]) if count else (0, 0)
                self._sizes[tweeter] = deque(
                    [smaller + 1] * larger + [smaller] * (calls[tweeter] - larger))

    def _plan_more(self, sizes: deque[int], slots: int) -> None:
        """Add slots to the first planned calls that have room, else as calls of their own."""
        for index, size in enumerate(sizes):
            added = min(slots, self.slots_per_call - size)
            sizes[index] += added
            slots -= added
        while slots > 0:
            sizes.appendleft(min(slots, self.slots_per_call))
            slots -= sizes[0]

    async def _call(self, tweeter: _PersonaTweeter, batch: list[Slot]) -> None:
        reply: TweetBatch | str | None = None
        tokens = (0, 0)
        try:
            reply, tokens = await tweeter.call(batch)
        except Exception as exc:  # RunStoppedError, or a bug: end the run rather than hang it
            self.ended_by = self.ended_by or exc
        self._calls.discard(asyncio.current_task())
        self._send()  # before judging: the free slot is taken at once
        replied_at = self._last_reply_at = time.monotonic()
        async with self._judging:
            await self._quiet(replied_at)
            try:
                await self.checks_ready  # the language model, loaded in a thread meanwhile
                tweeter.settle(batch, reply, tokens)
                self._send()  # the rejected slots
                tweeter.save(now=self._close(tweeter))
            except Exception as exc:  # a full disk, checks that failed to load: the run ends
                self.ended_by = self.ended_by or exc
        if self.ended_by is not None:
            for other in self._tweeters:
                self._close(other)

    async def _quiet(self, replied_at: float) -> None:
        """Return once no reply has come in for JUDGE_QUIET_S, or JUDGE_DELAY_S after ours, or
        no slot is left to send."""
        await asyncio.sleep(0)  # what is ready now (a reply, a request going out) goes first
        # A loop of sleeps, not an event: each new reply moves the deadline.
        while (wait := self._judging_wait_s(replied_at)) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)

    def _judging_wait_s(self, replied_at: float) -> float:
        if not any(tweeter.pending for tweeter in self._tweeters):
            return 0.0
        return min(self._last_reply_at + JUDGE_QUIET_S,
                   replied_at + JUDGE_DELAY_S) - time.monotonic()

    def _close(self, tweeter: _PersonaTweeter) -> bool:
        """Wake the persona's `fill` when it has nothing left to wait for; True when it did."""
        done = not tweeter.calls_out and (not tweeter.pending or self.ended_by is not None)
        finished = self._tweeters[tweeter]
        if done and not finished.is_set():
            finished.set()
            return True
        return False


async def _tweets_for(session: LLMSession, card: Path, options: TweetOptions,
                      dispatcher: _CallDispatcher,
                      progress: TweetProgress | None) -> PersonaTweets:
    result = PersonaTweets(card)
    try:
        profile = load_profile(card)
        result.persona = profile.name
        calendar = await ensure_calendar(session, profile, options.month, options.out_dir,
                                         language=options.language, nsfw_level=options.nsfw_level)
    except RunStoppedError:
        raise
    except PersonaFoundryError as exc:
        result.error = str(exc)
        return result
    # Failed slots are tried again: their failure may have been a passing one.
    slots = [slot for slot in calendar.slots if slot.status in ("planned", "failed")]
    slots = slots[: options.count]
    if len(slots) < options.count:
        result.error = (f"only {len(slots)} open slot(s) left in {options.month}; "
                        "use another --month for more")
    if not slots:
        return result
    if progress:
        progress.add_total(len(slots))
    tweeter = _PersonaTweeter(session, profile, calendar, options, result, progress)
    tweeter.remember_earlier_posts()
    await dispatcher.fill(tweeter, tweeter.recover_unsaved(slots))
    return result


async def generate_tweets(options: TweetOptions, session: LLMSession,
                          progress: TweetProgress | None = None) -> TweetRunSummary:
    """Posts for every card under one session (one limit across all personas)."""
    started = time.perf_counter()
    if progress:
        progress.watch(session.window_limit)
    # Load the language model while the month plans are being asked for.
    warm_up = asyncio.create_task(asyncio.to_thread(warm_up_checks))
    dispatcher = _CallDispatcher(session, options.slots_per_call, warm_up)
    try:
        await session.check()
        results = await asyncio.gather(*[_tweets_for(session, card, options, dispatcher, progress)
                                         for card in options.cards])
        await warm_up
    except RunStoppedError as exc:
        await dispatcher.stop(exc)
        return TweetRunSummary([], time.perf_counter() - started, str(exc),
                               session.pool.budget.spent_usd)
    return TweetRunSummary(list(results), time.perf_counter() - started,
                           cost_usd=session.pool.budget.spent_usd)


