"""The exactly-once publishing loop: approved slots go out at their time, each exactly once.

For every slot it sends, in this order:

1. the slot moves `approved → publishing` with its idempotency key (calendar, locked), and a
   `sending` row goes to the ledger — both before a byte leaves;
2. the post is sent (images with alt text first); a 429 waits for the platform's reset, a 5xx
   or timeout backs off and asks the platform whether the post arrived before sending again;
3. the slot moves `publishing → posted` with the platform's id and URL (calendar, tweet record,
   ledger). A refusal (4xx) moves it to `failed` with the platform's reason; the rest go on.

A process that dies between 2 and 3 leaves the slot `publishing`: an *uncertain* attempt. The
next run asks the platform (`Platform.find`: the account's recent posts) before sending it
again, so a post is neither published twice nor silently dropped. Only one publisher runs per
output folder at a time (a lock in its private state).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import (
    AccountRefusedError,
    ConfigurationError,
    InputError,
    OutputError,
    PlatformUnavailableError,
    PostRejectedError,
    PublishError,
    RateLimitedError,
)
from ..ledger import Ledger, PublishAttemptRow
from ..store import (
    Account,
    Calendar,
    OutputLayout,
    PublishRecord,
    Slot,
    TweetFile,
    read_accounts,
    read_calendar,
    update_calendar,
    update_tweet_file,
)
from .base import OutgoingPost, Platform, PlatformSpec, PublishedPost
from .credentials import resolve_secrets
from .outgoing import PostBuilder
from .retry import MAX_RATE_LIMIT_WAIT_S, MAX_SEND_ATTEMPTS, backoff_s, rate_limit_wait_s
from .schedule import Plan, plan_account

log = logging.getLogger(__name__)
PRIVATE_DIR_MODE = 0o700
AfterSend = Callable[[OutgoingPost, PublishedPost], None]


@dataclass(frozen=True)
class PublishOutcome:
    """What happened to one slot in a run."""

    persona: str
    slot_id: str
    status: str  # posted | found | scheduled | rejected | deferred | error | due | waiting
    detail: str = ""
    url: str = ""


@dataclass
class PublishSummary:
    """A run's outcomes, what comes next, and the problems that stopped an account."""

    outcomes: list[PublishOutcome] = field(default_factory=list)
    upcoming: list[tuple[str, str, datetime]] = field(default_factory=list)
    next_due: datetime | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 when a post failed or an account could not publish, else 0."""
        bad = any(o.status in ("rejected", "error") for o in self.outcomes)
        return 1 if bad or self.problems else 0


@dataclass
class _AccountRun:
    """One account's platform and state within a run."""

    account: Account
    spec: PlatformSpec
    platform: Platform | None = None
    stopped: str | None = None
    retry_at: float | None = None  # a rate limit's reset: the account goes on then


@contextmanager
def publisher_lock(layout: OutputLayout) -> Iterator[None]:
    """Hold the output folder's publisher lock, or an OutputError if another one holds it."""
    private = ensure_private_dir(layout)
    lock = FileLock(str(private / "publish.lock"), timeout=0)
    try:
        with lock:
            yield
    except Timeout as exc:
        raise OutputError(f"another publisher is already running on {layout.root}") from exc


def ensure_private_dir(layout: OutputLayout) -> Path:
    """The output folder's private state directory: its owner's only, and ignored by git even
    when someone commits the output folder (it holds platform login sessions)."""
    private = layout.private_dir
    private.mkdir(parents=True, exist_ok=True)
    os.chmod(private, PRIVATE_DIR_MODE)
    ignore = private / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")
    return private


class Publisher:
    """Publishes an output folder's approved slots through the accounts in accounts.yaml."""

    def __init__(self, layout: OutputLayout, ledger: Ledger, platforms: Mapping[str, PlatformSpec],
                 *, run_id: str, after_send: AfterSend | None = None,
                 clock: Callable[[], float] = time.time, stop: asyncio.Event | None = None
                 ) -> None:
        self.layout, self.ledger, self.platforms, self.run_id = layout, ledger, platforms, run_id
        self.posts = PostBuilder(layout)
        self._after_send = after_send
        self._clock = clock
        self.stop = stop or asyncio.Event()

    async def run_once(self, *, through: date | None = None, dry_run: bool = False
                       ) -> PublishSummary:
        """Publish every due slot (and every uncertain attempt) once; say what comes next."""
        summary = PublishSummary()
        now = datetime.fromtimestamp(self._clock(), UTC)
        accounts = read_accounts(self.layout.accounts_path)
        for persona, calendars in self._calendars_by_persona(summary).items():
            account = accounts.for_persona(persona)
            if account is None:
                continue
            spec = self.platforms.get(account.platform)
            if spec is None:
                summary.problems.append(f"{persona}: unknown platform {account.platform!r} "
                                        f"(known: {', '.join(sorted(self.platforms))})")
                continue
            plan = plan_account(calendars, spec, account, now=now, through=through)
            summary.upcoming += plan.upcoming
            if plan.next_due and (summary.next_due is None or plan.next_due < summary.next_due):
                summary.next_due = plan.next_due
            run = _AccountRun(account, spec)
            try:
                await self._run_account(run, plan, summary, dry_run=dry_run)
            finally:
                if run.platform is not None:
                    await run.platform.aclose()
            if run.retry_at is not None:
                retry = datetime.fromtimestamp(run.retry_at, UTC)
                summary.next_due = min(summary.next_due or retry, retry)
        return summary

    def _calendars_by_persona(self, summary: PublishSummary
                              ) -> dict[str, list[tuple[Path, Calendar]]]:
        """Every readable calendar by persona (an unreadable one is a problem, not a stop)."""
        found: dict[str, list[tuple[Path, Calendar]]] = {}
        for path in self.layout.calendar_paths():
            try:
                calendar = read_calendar(path)
            except InputError as exc:
                summary.problems.append(str(exc))
                continue
            found.setdefault(calendar.persona_key, []).append((path, calendar))
        return found

    async def _run_account(self, run: _AccountRun, plan: Plan, summary: PublishSummary, *,
                           dry_run: bool) -> None:
        persona = run.account.persona
        try:
            secrets = resolve_secrets(run.account, run.spec.secret_names)
        except ConfigurationError as exc:
            if plan.sends:
                summary.problems.append(f"{persona}: {exc}")
            return
        for item in plan.sends:
            if dry_run:
                when = "schedule for" if item.schedule else "due"
                summary.outcomes.append(PublishOutcome(persona, item.slot.id, "due",
                                                       f"{when} {item.when.isoformat()}"))
                continue
            if self.stop.is_set() or run.stopped:
                break
            if run.platform is None:
                run.platform = run.spec.open(run.account, secrets,
                                             ensure_private_dir(self.layout))
            summary.outcomes.append(await self._publish_slot(run, item.path, item.calendar,
                                                             item.slot, item.schedule))
        if not dry_run and not run.stopped:
            await self._look_up_live(run, plan, secrets)
        if run.stopped:
            summary.problems.append(f"{persona}: stopped for this run: {run.stopped}")

    async def _look_up_live(self, run: _AccountRun, plan: Plan, secrets: dict[str, str]) -> None:
        """Give posts the platform's scheduler published their live id and URL."""
        for item in plan.gone_live:
            if run.platform is None:
                run.platform = run.spec.open(run.account, secrets,
                                             ensure_private_dir(self.layout))
            post = self.posts.build_text_only(item.calendar, item.slot, run.account)
            try:
                found = await run.platform.find(post)
            except PublishError as exc:
                log.warning("%s: live URL not looked up: %s", item.slot.id, exc)
                return
            if found is None or found.scheduled or not found.url:
                continue  # not published yet (or not by this account): asked again next run

            def went_live(calendar: Calendar, found: PublishedPost = found,
                          slot_id: str = item.slot.id) -> Slot:
                slot = calendar.slot(slot_id)
                if slot.publish is not None:
                    slot.publish.post_id, slot.publish.url = found.post_id, found.url
                    slot.publish.scheduled = False
                return slot

            slot = update_calendar(item.path, went_live)
            self._mark_tweet_record(slot, found, slot.publish.at if slot.publish else None)
            self._record(run, post, "live", post_id=found.post_id, url=found.url)

    async def _publish_slot(self, run: _AccountRun, path: Path, calendar: Calendar, slot: Slot,
                            schedule: datetime | None) -> PublishOutcome:
        persona, platform = calendar.persona_key, run.platform
        if platform is None:  # opened by _run_account before the first slot
            raise ConfigurationError(f"{persona}: no platform open")
        uncertain = slot.status == "publishing"
        try:
            post = self.posts.build(calendar, slot, run.account, run.spec, schedule)
        except InputError as exc:
            return PublishOutcome(persona, slot.id, "waiting", str(exc))
        # 1. An uncertain attempt is looked for before anything is sent again.
        if uncertain:
            try:
                found = await platform.find(post)
            except PublishError as exc:
                run.stopped = f"cannot check an uncertain attempt: {exc}"
                return PublishOutcome(persona, slot.id, "error", run.stopped)
            if found is not None:
                return self._confirm(path, post, run, found, "found")
        # 2. Otherwise the attempt is recorded before anything leaves.
        elif not self._start(path, post, run):
            return PublishOutcome(persona, slot.id, "waiting", "changed since it was read")
        problem = run.spec.text_problem(post.text)
        if problem is not None:
            return self._reject(path, post, run, f"not sent: {problem}")
        # 3. Send, then confirm.
        try:
            published = await self._send(platform, post)
        except PostRejectedError as exc:
            return self._reject(path, post, run, f"{exc.platform} refused it: {exc.reason}")
        except RateLimitedError as exc:
            run.stopped, run.retry_at = str(exc), exc.reset_at
            return self._defer(path, post, run, str(exc))
        except (AccountRefusedError, ConfigurationError) as exc:
            # The account cannot post now (refused credentials, no such Postiz channel).
            run.stopped = str(exc)
            return self._defer(path, post, run, str(exc))
        except PlatformUnavailableError as exc:
            run.stopped = str(exc)
            self._record(run, post, "error", reason=str(exc))
            return PublishOutcome(persona, slot.id, "error",
                                  f"uncertain, checked before the next send: {exc}")
        if self._after_send is not None:
            self._after_send(post, published)
        return self._confirm(path, post, run, published,
                             "scheduled" if published.scheduled else "posted")

    async def _send(self, platform: Platform, post: OutgoingPost) -> PublishedPost:
        """One post with its retries: 429 waits for the reset, 5xx backs off and asks first.

        Once an attempt may have posted (a 5xx, a timeout), a later refusal or 429 no longer
        proves that nothing went out: it is raised as PlatformUnavailableError, so the slot
        stays `publishing` and the next run looks for the post before anything else.
        """
        maybe_sent = False
        for attempt in range(1, MAX_SEND_ATTEMPTS + 1):
            try:
                return await platform.publish(post)
            except PlatformUnavailableError as exc:
                maybe_sent = True
                if attempt == MAX_SEND_ATTEMPTS:
                    raise
                log.warning("%s: %s; retrying (attempt %d)", post.slot_id, exc, attempt + 1)
                if await self.pause(backoff_s(attempt)):
                    raise
                # The failed request may have posted: ask before sending it again.
                found = await platform.find(post)
                if found is not None:
                    return found
            except PublishError as exc:
                if maybe_sent:
                    raise PlatformUnavailableError(exc.platform, f"{exc.reason}, after an "
                                                   "attempt that may have posted") from exc
                if not isinstance(exc, RateLimitedError):
                    raise
                wait = rate_limit_wait_s(exc.reset_at, now=self._clock(), attempt=attempt)
                if wait > MAX_RATE_LIMIT_WAIT_S or attempt == MAX_SEND_ATTEMPTS:
                    raise
                log.warning("%s: rate limited, waiting %.1f s for its reset", post.slot_id, wait)
                if await self.pause(wait):
                    raise
        raise PlatformUnavailableError("publisher", "no attempt left")  # the loop returns

    async def pause(self, seconds: float) -> bool:
        """Sleep, or return True at once when the publisher is asked to stop."""
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    def _start(self, path: Path, post: OutgoingPost, run: _AccountRun) -> bool:
        """approved → publishing with the key, if the slot still holds this very post."""

        def start(calendar: Calendar) -> bool:
            slot = calendar.slot(post.slot_id)
            if slot.status != "approved" or (slot.text or "") != post.text:
                return False
            slot.apply("start_publish")
            slot.failure = None
            slot.publish = PublishRecord(platform=run.spec.name, account=run.account.label,
                                         idempotency_key=post.idempotency_key)
            return True

        started = update_calendar(path, start)
        if started:
            self._record(run, post, "sending")
        return started

    def _confirm(self, path: Path, post: OutgoingPost, run: _AccountRun,
                 published: PublishedPost, status: str) -> PublishOutcome:
        """publishing → posted, with the platform's id and URL everywhere the post is kept."""
        at = datetime.now(UTC).isoformat()

        def confirm(calendar: Calendar) -> Slot:
            slot = calendar.slot(post.slot_id)
            slot.apply("confirm")
            slot.publish = PublishRecord(
                platform=run.spec.name, account=run.account.label,
                idempotency_key=post.idempotency_key, post_id=published.post_id,
                url=published.url or None, at=at, scheduled=published.scheduled)
            return slot

        slot = update_calendar(path, confirm)
        self._mark_tweet_record(slot, published, at)
        self._record(run, post, status, post_id=published.post_id, url=published.url)
        return PublishOutcome(post.persona, post.slot_id, status, url=published.url)

    def _mark_tweet_record(self, slot: Slot, published: PublishedPost, at: str | None) -> None:
        path = self.posts.tweet_path(slot)
        if path is None:
            return

        def mark(tweet_file: TweetFile) -> None:
            for record in tweet_file.tweets:
                if record.slot_id == slot.id:
                    record.posted_id, record.posted_url = published.post_id, published.url or None
                    record.posted_at = at

        update_tweet_file(path, mark)

    def _reject(self, path: Path, post: OutgoingPost, run: _AccountRun,
                reason: str) -> PublishOutcome:
        """publishing → failed with the platform's reason; the rest of the run goes on."""

        def reject(calendar: Calendar) -> None:
            slot = calendar.slot(post.slot_id)
            slot.apply("reject")
            slot.failure = reason

        update_calendar(path, reject)
        self._record(run, post, "rejected", reason=reason)
        return PublishOutcome(post.persona, post.slot_id, "rejected", reason)

    def _defer(self, path: Path, post: OutgoingPost, run: _AccountRun,
               reason: str) -> PublishOutcome:
        """publishing → approved: the platform refused for now and nothing went out."""

        def defer(calendar: Calendar) -> None:
            calendar.slot(post.slot_id).apply("defer")

        update_calendar(path, defer)
        self._record(run, post, "deferred", reason=reason)
        return PublishOutcome(post.persona, post.slot_id, "deferred", reason)

    def _record(self, run: _AccountRun, post: OutgoingPost, status: str, *,
                post_id: str | None = None, url: str | None = None,
                reason: str | None = None) -> None:
        self.ledger.record_publish(PublishAttemptRow(
            run_id=self.run_id, persona=post.persona, slot_id=post.slot_id,
            platform=run.spec.name, account=run.account.label,
            idempotency_key=post.idempotency_key, status=status, post_id=post_id,
            url=url or None, reason=reason))
