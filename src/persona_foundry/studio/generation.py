"""The studio's LLM work, through the very paths the CLI takes.

- Regenerate: one `tweets` call for one slot (the same prompt, schema and session), with the
  reviewer's note as the reason; the reply is checked like any post.
- Generate: `generate_tweets` for a persona's open slots, as a background job whose progress
  (the `TweetProgress` protocol) a page polls.
- Retry: `complete_cards` on a card, which reruns only the stages that failed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..completion import complete_cards
from ..errors import PersonaFoundryError
from ..llm.session import LLMSession
from ..nsfw import NsfwLevel
from ..pipeline import PersonaOutcome, PersonaRunOptions
from ..settings import Settings
from ..stages.base import StageResult
from ..store import claim_tweet_file
from ..tweets import STAGE_NAME, TweetBatch, TweetOptions, generate_tweets, tweet_messages
from ..tweets import _restrict_batch as restrict_batch
from .editing import PostChange, change_post, post_problems, rules_for
from .reading import OutputReader, PostView

MAX_JOBS_KEPT = 50


@dataclass(frozen=True)
class Regenerated:
    """A regenerate's outcome: the post as it is now, the new text and why it was refused."""

    post: PostView
    text: str
    problems: list[str]


async def regenerate_post(session: LLMSession, reader: OutputReader, post: PostView,
                          note: str, expected_version: str | None) -> Regenerated:
    """One call for the slot's post with the note as the reason; saved when it passes."""
    key = post.calendar.persona_key
    profile = reader.profile(key)
    rules = rules_for(reader, key)
    options = TweetOptions(cards=[profile.card_path], out_dir=reader.layout.root,
                           month=post.calendar.month, count=1, language=rules.language,
                           nsfw_level=post.persona.nsfw_level)
    current = post.record.text if post.record else ""
    # The moment makes each request new: a second regenerate must not get the cached reply.
    reason = (f"A reviewer asked for a new post at {datetime.now(UTC).isoformat()}"
              f"{f', saying: {note}' if note else ''}. Do not reuse the current draft: "
              f"{current!r}.")
    done = await session.call(
        TweetBatch, tweet_messages(profile, post.calendar, [post.slot], options,
                                   {post.slot.id: reason}),
        stage=STAGE_NAME, persona=key, context={"slot_ids": [post.slot.id]},
        adjust_schema=restrict_batch([post.slot]),
    )
    draft = done.output.tweets[0]
    problems = post_problems(draft.text, rules, post)
    if problems:
        return Regenerated(post, draft.text, problems)
    new_file = None if post.record else claim_tweet_file(reader.layout.tweets_dir, key)
    changed = change_post(reader, post, PostChange(
        text=draft.text, expected_version=expected_version, image_prompt=draft.image_prompt,
        new_file=new_file, model=session.model_for(STAGE_NAME)))
    return Regenerated(changed, draft.text, [])


@dataclass
class Job:
    """A background run the studio started: what it is, how far it got, how it ended."""

    id: str
    title: str
    persona: str
    total: int = 0
    done: int = 0
    state: str = "running"  # running, done, failed
    lines: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def percent(self) -> int:
        """Progress in whole percent."""
        return round(100 * self.done / self.total) if self.total else 0

    # The `tweets` progress protocol.
    def add_total(self, slots: int) -> None:
        """More slots to fill."""
        self.total += slots

    def advance(self, slots: int) -> None:
        """Slots finished (drafted or failed)."""
        self.done += slots

    def watch(self, window: Callable[[], int | None]) -> None:
        """The window is not shown in the studio."""

    # The pipeline's progress protocol.
    def started(self, total: int, backend: str, window: Callable[[], int | None]) -> None:
        """The retry begins."""
        self.lines.append(f"{total} persona(s) on {backend}")

    def stage_event(self, kind: str, persona: str, result: StageResult | None) -> None:
        """Count stages as they start and end."""
        if kind == "start":
            self.total += 1
        elif kind == "finish":
            self.done += 1
        if result is not None and kind == "failed":
            self.lines.append(f"stage {result.stage} failed: {result.error}")

    def persona_done(self, outcome: PersonaOutcome) -> None:
        """A card was written (or not)."""
        self.lines.append(f"{outcome.name or outcome.image.name}: {outcome.status}"
                          + (f" ({outcome.error})" if outcome.error else ""))


class JobBook:
    """The studio's background jobs, by id; the event loop's tasks kept alive until done."""

    def __init__(self, settings: Settings, out_dir: Path) -> None:
        self.settings, self.out_dir = settings, out_dir
        self.jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    def get(self, job_id: str) -> Job | None:
        """A job by id."""
        return self.jobs.get(job_id)

    def start(self, title: str, persona: str, work: Callable[[Job], Awaitable[str]]) -> Job:
        """Run `work` in the background; its return value is the job's last line."""
        job = Job(str(next(self._ids)), title, persona)
        if len(self.jobs) >= MAX_JOBS_KEPT:
            self.jobs.pop(next(iter(self.jobs)))
        self.jobs[job.id] = job
        task = asyncio.create_task(self._run(job, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: Job, work: Callable[[Job], Awaitable[str]]) -> None:
        try:
            job.lines.append(await work(job))
            job.state = "done"
        except PersonaFoundryError as exc:
            job.lines.append(f"error: {exc}")
            job.state = "failed"

    def generate(self, card: Path, key: str, month: str, count: int, language: str,
                 nsfw_level: NsfwLevel) -> Job:
        """Fill a persona's open slots of `month` (the `tweets` command's path)."""
        options = TweetOptions(cards=[card], out_dir=self.out_dir, month=month, count=count,
                               language=language, nsfw_level=nsfw_level)

        async def work(job: Job) -> str:
            async with LLMSession.open(self.settings, self.out_dir) as session:
                summary = await generate_tweets(options, session, job)
            if summary.fatal_error:
                raise PersonaFoundryError(summary.fatal_error)
            errors = [p.error for p in summary.personas if p.error]
            failed = sum(p.failed for p in summary.personas)
            return (f"{summary.made} posts written, {failed} failed in {summary.wall_s:.1f} s"
                    + (f"; {'; '.join(errors)}" if errors else ""))

        return self.start(f"Generate {month}", key, work)

    def retry(self, card: Path, key: str, language: str, nsfw_level: NsfwLevel) -> Job:
        """Rerun only the failed stages of a card (`persona --complete` on it)."""
        options = PersonaRunOptions(images=[], out_dir=self.out_dir, language=language,
                                    nsfw_level=nsfw_level)

        async def work(job: Job) -> str:
            summary = await complete_cards([card], options, self.settings, progress=job)
            if summary.fatal_error:
                raise PersonaFoundryError(summary.fatal_error)
            return f"{summary.succeeded} complete, {summary.failed} still incomplete"

        return self.start("Retry failed stages", key, work)
