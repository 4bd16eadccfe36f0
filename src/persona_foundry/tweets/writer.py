"""One persona's posts in one run: its calls, their verdicts, the ledger rows and the saves.

The dispatcher decides when a batch goes out; this class only knows how to ask for a batch,
what to make of the reply (which slots to try again) and when to save.
"""

from __future__ import annotations

import time

from ..errors import LLMError, RunStoppedError
from ..ledger.calls import TweetRecordRow
from ..llm.session import LLMSession
from ..profile import PersonaProfile
from ..quality.judge import JudgedPost, judge_posts
from ..quality.judge import Verdict as Consistency
from ..store import Calendar, OutputLayout, Slot, TweetRecord
from ..textchecks import PostRules, rule_problems
from .judging import Judge, Verdict
from .options import PersonaTweets, TweetOptions, TweetProgress
from .persistence import PostFiles, record_json, recovered_record, tweet_record
from .prompting import TweetBatch, restrict_batch, tweet_messages

STAGE_NAME = "tweets"
# Saving rewrites the whole file and the calendar: at most this often (and at the end). A crash
# in between loses no money: each accepted post is already in the ledger, and a rerun takes it
# from there (recover_unsaved) instead of asking again.
PERSIST_INTERVAL_S = 2.0
Reply = TweetBatch | str  # a str: why the call failed


class PersonaWriter:
    """Fills one persona's slots: asks, judges, records, saves (the dispatcher sends)."""

    def __init__(self, session: LLMSession, profile: PersonaProfile, calendar: Calendar,
                 options: TweetOptions, result: PersonaTweets,
                 progress: TweetProgress | None) -> None:
        self.session, self.profile, self.calendar = session, profile, calendar
        self.options, self.result, self.progress = options, result, progress
        self.judge = Judge(PostRules(options.language, profile.strategy.max_hashtags_per_tweet,
                                     profile.strategy.emoji_use, profile.name))
        self.records: list[TweetRecord] = []
        # The consistency judge's verdicts on the drafts of the latest calls (with --judge).
        self.consistency: dict[str, Consistency] = {}
        self.files = PostFiles(OutputLayout(options.out_dir), profile, options.month,
                               session.run_id)
        self._persisted_at = time.monotonic()
        result.tweet_file = self.files.tweet_file

    def remember_earlier_posts(self) -> None:
        """Example posts, other tweet files and already drafted slots all count as taken."""
        for text in self.profile.example_posts:
            self.judge.remember(text)
        for text in self.files.earlier_posts():
            self.judge.remember(text)

    def recover_unsaved(self, slots: list[Slot]) -> list[Slot]:
        """Take posts an earlier run accepted (and paid for) but died before saving from the
        ledger, instead of asking for them again; return the slots still to write."""
        saved = self.session.ledger.drafted_posts(self.profile.key, [slot.id for slot in slots])
        left = []
        for slot in slots:
            record = recovered_record(saved.get(slot.id), slot)
            if record is None or self.judge.is_taken(record.text):
                left.append(slot)
                continue
            self.judge.remember(record.text)
            self.records.append(record)
            self.result.made += 1
            self.result.recovered += 1
            if self.progress:
                self.progress.advance(1)
        if len(left) < len(slots):
            self._persist()
        return left

    async def call(self, batch: list[Slot]) -> tuple[Reply, tuple[int, int]]:
        """One LLM call for `batch`: the reply, or why it failed (RunStoppedError is raised)."""
        messages = tweet_messages(self.profile, self.calendar, batch, self.options,
                                  self.judge.feedback, self.judge.attempts)
        try:
            done = await self.session.call(
                TweetBatch, messages, stage=STAGE_NAME, persona=self.profile.key,
                context={"slot_ids": [slot.id for slot in batch]},
                adjust_schema=restrict_batch(batch), own_pacing=True,  # the dispatcher's
            )
        except RunStoppedError:
            raise
        except LLMError as exc:
            return str(exc), (0, 0)
        if self.options.judge:
            await self._consult_judge(done.output)
        return done.output, (done.prompt_tokens, done.completion_tokens)

    async def _consult_judge(self, reply: TweetBatch) -> None:
        """The consistency judge's verdicts on the drafts that pass the house rules (the rest
        is redone anyway); a judge call that fails leaves its drafts unjudged, not rejected."""
        passing = [JudgedPost(draft.slot_id, draft.text) for draft in reply.tweets
                   if not rule_problems(draft.text, self.judge.rules)]
        try:
            run = await judge_posts(self.session, self.profile, passing, self.options.language)
        except LLMError:
            return
        self.consistency.update(run.verdicts)

    def settle(self, batch: list[Slot], reply: Reply, tokens: tuple[int, int]) -> list[Slot]:
        """Accept the good drafts; return the slots to try again."""
        self.result.prompt_tokens += tokens[0]
        self.result.completion_tokens += tokens[1]
        share = (tokens[0] / len(batch), tokens[1] / len(batch))
        consistency = {slot.id: found for slot in batch
                       if (found := self.consistency.pop(slot.id, None)) is not None}
        verdicts = self.judge.verdicts(batch, reply, consistency)
        for verdict in verdicts:
            self._count(verdict, share)
        return [verdict.slot for verdict in verdicts if verdict.status == "rejected"]

    def save(self, *, now: bool) -> None:
        """Persist now, or if the last save is PERSIST_INTERVAL_S old."""
        if now or time.monotonic() - self._persisted_at >= PERSIST_INTERVAL_S:
            self._persist()

    def _count(self, verdict: Verdict, share: tuple[float, float]) -> None:
        """The verdict in the result, the records and the ledger."""
        slot, record = verdict.slot, None
        self.result.duplicates += verdict.duplicate
        self.result.judge_rejected += verdict.judged_out
        if verdict.status == "drafted" and verdict.draft is not None:
            record = tweet_record(slot, verdict.draft, self.session.model_for(STAGE_NAME),
                                  verdict.attempt)
            self.records.append(record)
            self.result.made += 1
        elif verdict.status == "rejected":
            self.result.regenerated += 1
        else:
            self.result.failed += 1
            self.result.failures[slot.id] = verdict.problems
        self.session.ledger.record_tweet(TweetRecordRow(
            self.session.run_id, self.profile.key, slot.id, verdict.status,
            str(self.files.tweet_file), verdict.problems or None, *share,
            record_json=record_json(record) if record else None))
        if verdict.status != "rejected" and self.progress:
            self.progress.advance(1)

    def _persist(self) -> None:
        """Add the new posts to this run's tweet file and mark their slots in the calendar."""
        self._persisted_at = time.monotonic()
        self.files.save(self.records, dict(self.result.failures))
