"""`quality`: the measures of every persona-month in an output folder, and of the whole batch.

A persona-month is one calendar (out/calendars/{persona}_{month}.json) with the posts written
for its slots, read beside the persona's card (its strategy, example posts and voice).
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..errors import PersonaFoundryError
from ..llm.session import LLMSession
from ..profile import PersonaProfile, load_profile
from ..store import Calendar, OutputLayout, read_calendar
from ..textchecks import DuplicateIndex, set_problems, third_person_problem
from .judge import JudgedPost, JudgeRun, judge_posts
from .metrics import DiversityScores, diversity_scores, near_duplicate_partners
from .style import PillarStyle, StyledPost, habits_kept, style_profile

WRITTEN = ("drafted", "approved", "publishing", "posted")  # the slot statuses holding a post
WORST_SHOWN = 5
# A post this close to the rest (BLEU-4 against the month's other posts) echoes them.
ECHO_BLEU = 0.5
DAYS_PER_WEEK = 7
# Targets the README states (issue 20).
MAX_NEAR_DUPLICATE_SHARE = 0.01
MIN_HABITS_MET = 0.95


@dataclass(frozen=True)
class MonthPost(StyledPost):
    """A written post of a calendar slot."""

    scheduled_at: str


@dataclass(frozen=True)
class Offender:
    """A post worth fixing or regenerating, and why."""

    slot_id: str
    text: str
    reasons: tuple[str, ...]
    score: float


@dataclass
class MonthQuality:
    """Every measure of one persona-month."""

    persona: str
    persona_key: str
    month: str
    posts: list[MonthPost]
    diversity: DiversityScores
    style: list[PillarStyle]
    example_duplicates: int  # near-duplicate pairs among the card's own example posts
    copied_examples: int  # posts that nearly repeat an example post
    consistency: float | None = None
    drift: list[tuple[str, float | None]] = field(default_factory=list)
    offenders: list[Offender] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """One measure with the target it is held to."""

    name: str
    value: str
    target: str
    met: bool | None  # None: stated, not held to a threshold


@dataclass
class QualityReport:
    """The whole folder: each persona-month, the batch pooled and across personas."""

    months: list[MonthQuality]
    pooled: DiversityScores
    across_personas: DiversityScores  # BLEU of each post against other personas' posts
    judge: JudgeRun | None = None
    judge_cost_usd: float = 0.0
    skipped: list[str] = field(default_factory=list)
    # Per persona, over all its months: the share of posts nearly repeating an earlier one.
    persona_near_duplicates: dict[str, float] = field(default_factory=dict)

    @property
    def meets_targets(self) -> bool:
        """Every target held to a threshold is met."""
        return all(target.met is not False for target in self.targets())

    def targets(self) -> list[Target]:
        """The figures the README promises, each against its target."""
        months = self.months
        duplicates = max((m.example_duplicates for m in months), default=0)
        copied = sum(m.copied_examples for m in months)
        near = max(self.persona_near_duplicates.values(), default=0.0)
        worst_habits = min((m.style[-1].habits_met for m in months if m.posts), default=1.0)
        rate = self.judge.pass_rate() if self.judge else None
        return [
            Target("near-duplicate pairs in a persona's example posts", str(duplicates), "0",
                   duplicates == 0),
            Target("posts copying an example post", str(copied), "0", copied == 0),
            Target("near-duplicate share of a persona's posts, all months (worst)",
                   f"{near:.1%}",
                   f"< {MAX_NEAR_DUPLICATE_SHARE:.0%}", near < MAX_NEAR_DUPLICATE_SHARE),
            Target("posts keeping the hashtag and emoji habits (worst month)",
                   f"{worst_habits:.1%}", f"≥ {MIN_HABITS_MET:.0%}",
                   worst_habits >= MIN_HABITS_MET),
            Target("persona consistency pass rate (judge)",
                   "not judged" if rate is None else f"{rate:.1%}", "stated", None),
        ]


@dataclass(frozen=True)
class PersonaMonth:
    """A calendar with its card's profile."""

    profile: PersonaProfile
    calendar: Calendar


def collect_months(out_dir: Path) -> tuple[list[PersonaMonth], list[str]]:
    """Every calendar of the folder whose card loads; and why the others were skipped."""
    found, skipped = [], []
    layout = OutputLayout(out_dir)
    for path in layout.calendar_paths():
        try:
            calendar = read_calendar(path)
            profile = load_profile(layout.card_path(calendar.persona_key))
        except PersonaFoundryError as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        found.append(PersonaMonth(profile, calendar))
    return found, skipped


def month_posts(calendar: Calendar) -> list[MonthPost]:
    """The month's written posts, in slot order."""
    return [MonthPost(slot.id, slot.pillar, slot.text, slot.scheduled_at)
            for slot in calendar.slots if slot.status in WRITTEN and slot.text]


def _week(post: MonthPost) -> str:
    when = datetime.fromisoformat(post.scheduled_at)
    first = (when.day - 1) // DAYS_PER_WEEK * DAYS_PER_WEEK + 1
    last = min(first + DAYS_PER_WEEK - 1, monthrange(when.year, when.month)[1])
    return f"days {first}-{last}"


def drift(posts: Sequence[MonthPost], run: JudgeRun) -> list[tuple[str, float | None]]:
    """The consistency pass rate week by week of the month."""
    weeks: dict[str, list[str]] = {}
    for post in posts:
        weeks.setdefault(_week(post), []).append(post.slot_id)
    return [(week, run.pass_rate(ids)) for week, ids in weeks.items()]


def _copies_example(examples: Sequence[str]) -> Callable[[str], str | None]:
    index = DuplicateIndex()
    for text in examples:
        index.add(text)
    return index.find


def offenders(month: MonthQuality, examples: Sequence[str], profile: PersonaProfile,
              run: JudgeRun | None) -> list[Offender]:
    """The month's worst posts, worst first: near duplicates, copied examples, failed judge
    verdicts, posts about the persona rather than by them, broken habits, posts echoing the
    rest."""
    copied_from = _copies_example(examples)
    found = []
    for number, post in enumerate(month.posts):
        reasons, score = [], month.diversity.post_bleu[number]
        partner = month.diversity.partners[number]
        if partner is not None:
            reasons.append(f"near duplicate of {partner[:60]!r}")
            score += 3
        example = copied_from(post.text)
        if example is not None:
            reasons.append(f"copies the example {example[:60]!r}")
            score += 3
        verdict = run.verdicts.get(post.slot_id) if run else None
        if verdict is not None and not verdict.consistent:
            reasons.append(f"judge: {verdict.reason}")
            score += 2
        if third_person_problem(post.text, profile.name):
            reasons.append("names the persona in the third person at its start")
            score += 2
        if not habits_kept(post.text, profile.strategy):
            reasons.append("breaks the hashtag or emoji habit")
            score += 1
        if month.diversity.post_bleu[number] >= ECHO_BLEU:
            reasons.append(f"echoes other posts (BLEU {month.diversity.post_bleu[number]:.2f})")
        if reasons:
            found.append(Offender(post.slot_id, post.text, tuple(reasons), score))
    return sorted(found, key=lambda offender: -offender.score)[:WORST_SHOWN]


def measure_month(month: PersonaMonth, run: JudgeRun | None) -> MonthQuality:
    """Every deterministic measure of one persona-month, and the judge's where it ran."""
    profile, posts = month.profile, month_posts(month.calendar)
    examples = profile.example_posts
    copied = _copies_example(examples)
    result = MonthQuality(
        persona=profile.name, persona_key=profile.key, month=month.calendar.month, posts=posts,
        diversity=diversity_scores([post.text for post in posts]),
        style=style_profile(posts, profile.strategy),
        example_duplicates=len(set_problems(examples, None)),
        copied_examples=sum(copied(post.text) is not None for post in posts),
    )
    if run is not None:
        result.consistency = run.pass_rate([post.slot_id for post in posts])
        result.drift = drift(posts, run)
    result.offenders = offenders(result, examples, profile, run)
    return result


async def judge_months(session: LLMSession, months: Sequence[PersonaMonth]) -> JudgeRun:
    """The consistency judge over every written post of every month (one shared run)."""
    run = JudgeRun()
    for month in months:  # one persona-month at a time: each month's calls still go together
        posts = [JudgedPost(post.slot_id, post.text) for post in month_posts(month.calendar)]
        await judge_posts(session, month.profile, posts, month.profile.language, run)
    return run


def persona_near_duplicates(months: Sequence[MonthQuality]) -> dict[str, float]:
    """Each persona's near-duplicate share over all its months' posts, in month order."""
    texts: dict[str, list[str]] = {}
    for month in sorted(months, key=lambda m: m.month):
        texts.setdefault(month.persona_key, []).extend(post.text for post in month.posts)
    return {key: sum(p is not None for p in near_duplicate_partners(posts)) / len(posts)
            for key, posts in texts.items() if posts}


def batch_measures(months: Sequence[MonthQuality]) -> tuple[DiversityScores, DiversityScores]:
    """The pooled batch, and each post against the other personas' posts (homogenisation)."""
    texts = [post.text for month in months for post in month.posts]
    owners = {month.persona_key for month in months}
    number = {key: n for n, key in enumerate(sorted(owners))}
    groups = [number[month.persona_key] for month in months for _ in month.posts]
    return diversity_scores(texts), diversity_scores(texts, groups)


async def quality_report(out_dir: Path, session: LLMSession | None) -> QualityReport:
    """Measure every persona-month of `out_dir`; with a session, judge their posts too."""
    months, skipped = collect_months(out_dir)
    run = None
    if session is not None:
        spent_before = session.pool.budget.spent_usd
        run = await judge_months(session, months)
    measured = [measure_month(month, run) for month in months]
    pooled, across = batch_measures(measured)
    report = QualityReport(measured, pooled, across, judge=run, skipped=skipped,
                           persona_near_duplicates=persona_near_duplicates(measured))
    if session is not None:
        report.judge_cost_usd = session.pool.budget.spent_usd - spent_before
    return report
