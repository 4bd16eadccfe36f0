"""Whether a drafted post is accepted: the house rules (the persona's voice included), image
prompts, near-duplicates and same openings (of the run's earlier posts and inside one reply),
the consistency judge's verdict when it runs, and how many attempts a slot gets before it is
marked failed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from ..quality.judge import Verdict as Consistency
from ..store import Slot
from ..textchecks import (
    DuplicateIndex,
    PostRules,
    opening,
    opening_problem,
    rule_problems,
    set_problems,
)
from .prompting import TweetBatch, TweetDraft

MAX_TWEET_ATTEMPTS = 3
VerdictStatus = Literal["drafted", "rejected", "failed"]


@dataclass(frozen=True)
class Verdict:
    """One slot's outcome in one reply: drafted, rejected (to try again) or failed for good."""

    slot: Slot
    status: VerdictStatus
    problems: str
    attempt: int
    draft: TweetDraft | None = None
    duplicate: bool = False
    judged_out: bool = False  # it passed every check but the consistency judge


class Judge:
    """One persona's judge: every accepted post becomes taken, so later near-copies fail."""

    def __init__(self, rules: PostRules, max_attempts: int = MAX_TWEET_ATTEMPTS) -> None:
        self.rules, self.max_attempts = rules, max_attempts
        self.seen = DuplicateIndex()
        # The openings of the posts accepted in this run (opening → which post): a post that
        # starts like one of them is redone (earlier runs' posts count for duplicates only).
        self.openings: dict[str, str] = {}
        self.attempts: Counter[str] = Counter()
        # Why each slot's last draft was rejected: the next prompt for the slot says so.
        self.feedback: dict[str, str] = {}

    def remember(self, text: str) -> None:
        """Count a post written elsewhere (examples, other runs) as taken."""
        self.seen.add(text)

    def is_taken(self, text: str) -> bool:
        """Whether a near-copy of `text` was accepted or remembered already."""
        return self.seen.find(text) is not None

    def verdicts(self, batch: list[Slot], reply: TweetBatch | str,
                 consistency: dict[str, Consistency] | None = None) -> list[Verdict]:
        """Judge every draft of one reply (copies inside it are found before any is taken)."""
        twins = {} if isinstance(reply, str) else _twins_in_reply(reply.tweets)
        return [self.verdict(slot, reply, twins.get(slot.id, []), (consistency or {}).get(slot.id))
                for slot in batch]

    def verdict(self, slot: Slot, reply: TweetBatch | str, twins: list[str] | None = None,
                consistency: Consistency | None = None) -> Verdict:
        """Judge the reply's draft for `slot` (a str reply: why the call failed)."""
        self.attempts[slot.id] += 1
        attempt = self.attempts[slot.id]
        draft = None if isinstance(reply, str) else next(
            (tweet for tweet in reply.tweets if tweet.slot_id == slot.id), None)
        problems, duplicate = self._problems(slot, draft, reply, twins or [])
        judged_out = not problems and consistency is not None and not consistency.consistent
        if judged_out and consistency is not None:
            problems = f"the consistency judge: {consistency.reason}"
        if not problems and draft is not None:
            self.seen.add(draft.text)
            self.openings.setdefault(opening(draft.text), f"the post for slot {slot.id}")
            return Verdict(slot, "drafted", "", attempt, draft)
        if attempt < self.max_attempts:
            # The attempt number makes each retry a new request (never a cached reply).
            self.feedback[slot.id] = f"Draft {attempt} was rejected ({problems}): write a new one."
            return Verdict(slot, "rejected", problems, attempt, duplicate=duplicate,
                           judged_out=judged_out)
        return Verdict(slot, "failed", problems, attempt, duplicate=duplicate,
                       judged_out=judged_out)

    def _problems(self, slot: Slot, draft: TweetDraft | None, reply: TweetBatch | str,
                  twins: list[str]) -> tuple[str, bool]:
        if isinstance(reply, str):
            return f"the call failed: {reply}", False
        if draft is None:
            return "the reply had no post for this slot", False
        problems = rule_problems(draft.text, self.rules)
        if slot.format == "image" and not draft.image_prompt.strip():
            problems.append("an image slot needs an image_prompt")
        problems += twins
        earlier = None if problems else self.seen.find(draft.text)
        if earlier is not None:
            problems.append(f"too similar to an earlier post: {earlier[:80]!r}")
        elif not problems and (same_start := opening_problem(draft.text, self.openings)):
            problems.append(same_start)
        duplicate = earlier is not None or any(twin.startswith("too similar") for twin in twins)
        return "; ".join(problems), duplicate


def _twins_in_reply(drafts: list[TweetDraft]) -> dict[str, list[str]]:
    """Posts of one reply that repeat or open like another post of it, each naming that
    post's slot: all are known before any is accepted, so each copy is redone in the very next
    call, told what it copied (a small model repeated one post for four slots)."""
    labels = [f"the post for slot {draft.slot_id}" for draft in drafts]
    found = set_problems([draft.text for draft in drafts], None, labels=labels, openings=True)
    return {drafts[number].slot_id: problems for number, problems in found.items()}
