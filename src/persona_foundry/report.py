"""What a person sees: a live progress bar, one log line per persona, and the summary table."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .diversity import DiversityReport
from .pipeline import PersonaOutcome, RunSummary
from .stages.base import StageResult
from .store import Calendar
from .tweets import TweetRunSummary
from .usage import UsageRow

REASON_CHARS = 60
STATUS_STYLE = {"ok": "green", "partial": "yellow", "failed": "red", "skipped": "dim"}


class RichRunProgress:
    """A rich progress bar: personas done/failed, stages in flight; a line per finished persona."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress = Progress(
            TextColumn("[bold]personas"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
            console=console, transient=False,
        )
        self._task = self._progress.add_task("personas", total=0, detail="")
        self._in_flight = 0
        self._failed = 0
        self._window: Callable[[], int | None] = lambda: None

    def __enter__(self) -> RichRunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def started(self, total: int, backend: str, window: Callable[[], int | None]) -> None:
        """Set the bar's total, name the backend, follow the concurrency window."""
        self._window = window
        self.console.log(f"{total} persona(s) on {escape(backend)}")
        self._progress.update(self._task, total=total)
        self._refresh()

    def stage_event(self, kind: str, persona: str, result: StageResult | None) -> None:
        """Count stages in flight; log failed stages as they happen."""
        if kind == "start":
            self._in_flight += 1
        elif kind == "finish":
            self._in_flight -= 1
        if kind == "failed" and result is not None:
            failure = f"{persona}: stage {result.stage} failed: {result.error}"
            self.console.log(f"[yellow]{escape(failure)}")
        self._refresh()

    def persona_done(self, outcome: PersonaOutcome) -> None:
        """Advance the bar and log the persona's result with its reason."""
        if outcome.status in ("failed", "partial"):
            self._failed += 1
        style = STATUS_STYLE[outcome.status]
        where = f" → {outcome.card_path}" if outcome.card_path else ""
        reason = f" ({outcome.error})" if outcome.error and outcome.status != "ok" else ""
        text = f"{outcome.image.name}: {outcome.name or '-'}{where} in {outcome.seconds:.1f}s"
        self.console.log(f"[{style}]{outcome.status}[/] {escape(text + reason)}")
        self._progress.advance(self._task)
        self._refresh()

    def _refresh(self) -> None:
        window = self._window()
        shown = f" · window {window}" if window is not None else ""
        self._progress.update(
            self._task,
            detail=f"failed {self._failed} · stages in flight {self._in_flight}{shown}",
        )


def _short(text: str | None, limit: int = REASON_CHARS) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_summary(summary: RunSummary, console: Console) -> None:
    """The end-of-run table and totals."""
    table = Table(title="Persona Foundry run")
    for column in ("image", "status", "persona", "card", "time", "tokens", "reason"):
        table.add_column(column)
    for outcome in summary.outcomes:
        table.add_row(
            escape(outcome.image.name), f"[{STATUS_STYLE[outcome.status]}]{outcome.status}",
            escape(outcome.name or ""), escape(str(outcome.card_path or "")),
            f"{outcome.seconds:.1f}s", f"{outcome.prompt_tokens}+{outcome.completion_tokens}",
            escape(_short(outcome.error)),
        )
    console.print(table)
    for outcome in summary.outcomes:
        if outcome.status in ("failed", "skipped") and not outcome.failed_stages:
            style = STATUS_STYLE[outcome.status]
            line = f"{outcome.image}: {outcome.error}"
            console.print(f"[{style}]{outcome.status}[/] {escape(line)}")
        for stage, reason in outcome.failed_stages.items():
            line = f"{outcome.image.name} stage {stage}: {reason}"
            console.print(f"[yellow]{escape(line)}")
    made = [o for o in summary.outcomes if o.card_path]
    average = sum(o.seconds for o in made) / len(made) if made else 0.0
    tokens_in = sum(o.prompt_tokens for o in summary.outcomes)
    tokens_out = sum(o.completion_tokens for o in summary.outcomes)
    console.print(
        f"succeeded {summary.succeeded}, failed {summary.failed}, "
        f"skipped {sum(1 for o in summary.outcomes if o.status == 'skipped')}; "
        f"wall time {summary.wall_s:.1f}s, average {average:.1f}s per persona; "
        f"tokens {tokens_in} in / {tokens_out} out; cost ${summary.cost_usd:.4f}; "
        f"backend {escape(summary.backend)}"
    )
    if summary.fatal_error:
        console.print(f"[red bold]error:[/] {escape(summary.fatal_error)}")



class RichTweetProgress:
    """A progress bar over all slots of a `tweets` run."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]posts"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
            console=console,
        )
        self._task = self._progress.add_task("posts", total=0, detail="")
        self._window: Callable[[], int | None] = lambda: None

    def __enter__(self) -> RichTweetProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def add_total(self, slots: int) -> None:
        """More slots to fill."""
        total = self._progress.tasks[0].total or 0
        self._progress.update(self._task, total=total + slots)

    def advance(self, slots: int) -> None:
        """Slots finished."""
        window = self._window()
        self._progress.update(self._task, advance=slots,
                              detail=f"window {window}" if window is not None else "")

    def watch(self, window: Callable[[], int | None]) -> None:
        """Follow the concurrency window."""
        self._window = window


def print_tweet_summary(summary: TweetRunSummary, console: Console) -> None:
    """Per-persona table and run totals for `tweets`."""
    table = Table(title="Persona Foundry posts")
    for column in ("persona", "file", "made", "regenerated", "failed", "duplicates", "tokens"):
        table.add_column(column)
    for result in summary.personas:
        table.add_row(
            escape(result.persona or result.card.name), escape(str(result.tweet_file or "")),
            str(result.made), str(result.regenerated), str(result.failed),
            str(result.duplicates), f"{result.prompt_tokens}+{result.completion_tokens}",
        )
    console.print(table)
    for result in summary.personas:
        if result.error:
            console.print(f"[yellow]{escape(result.card.name)}: {escape(result.error)}")
        for slot, reason in result.failures.items():
            console.print(f"[red]{escape(result.card.name)} slot {slot}: {escape(reason)}")
    made = summary.made
    tokens_in = sum(p.prompt_tokens for p in summary.personas)
    tokens_out = sum(p.completion_tokens for p in summary.personas)
    rate = made / summary.wall_s if summary.wall_s else 0.0
    per_post = ""
    if made:
        per_post = f" ({tokens_in / made:.0f} in / {tokens_out / made:.0f} out per post)"
    judged_out = sum(p.judge_rejected for p in summary.personas)
    if judged_out:
        console.print(f"{judged_out} draft(s) failed the consistency judge and were redone")
    recovered = sum(p.recovered for p in summary.personas)
    if recovered:
        console.print(f"{recovered} post(s) accepted by an interrupted earlier run were taken "
                      "from the ledger (no new call)")
    console.print(
        f"posts {made}, regenerated {sum(p.regenerated for p in summary.personas)}, "
        f"failed {sum(p.failed for p in summary.personas)}, duplicates caught "
        f"{sum(p.duplicates for p in summary.personas)}; tokens {tokens_in} in / {tokens_out} "
        f"out{per_post}; cost ${summary.cost_usd:.4f}; wall time {summary.wall_s:.1f}s, "
        f"{rate:.2f} posts/s"
    )
    if summary.fatal_error:
        console.print(f"[red bold]error:[/] {escape(summary.fatal_error)}")


def print_calendar(calendar: Calendar, console: Console) -> None:
    """The month as a readable table."""
    events = {event.id: event.title for event in calendar.events}
    table = Table(title=f"{calendar.persona} — {calendar.month} ({calendar.timezone})")
    for column in ("when", "pillar", "theme", "format", "status", "post"):
        table.add_column(column)
    for slot in calendar.slots:
        theme = events.get(slot.event_id or "", slot.theme)
        when = slot.scheduled_at[:16].replace("T", " ")
        table.add_row(when, escape(slot.pillar), escape(theme), slot.format, slot.status,
                      escape(_short(slot.text, 50)))
    console.print(table)
    console.print("events: " + "; ".join(
        f"{event.date} {escape(event.title)}" for event in calendar.events))


def print_diversity(report: DiversityReport, console: Console) -> None:
    """Attribute shares vs targets, name clashes and the most similar bios."""
    table = Table(title=f"Diversity of {report.personas} personas")
    for column in ("attribute", "value", "share", "target"):
        table.add_column(column)
    for attribute, values in report.distributions.items():
        for value, (share, target) in sorted(values.items(), key=lambda kv: -kv[1][1]):
            if share or target >= 0.05:
                table.add_row(attribute, escape(value), f"{share:.0%}", f"{target:.0%}")
    console.print(table)
    clashes = report.duplicate_names + report.duplicate_handles
    console.print(f"distinct names {report.distinct_names}/{report.personas}; duplicate names "
                  f"or handles: {escape(', '.join(clashes)) or 'none'}")
    console.print(f"bio pairs {report.bio_pairs}, near-duplicates {report.near_duplicate_pairs} "
                  f"({report.near_duplicate_share:.1%}; target < 2%)")
    for similarity, left, right in report.most_similar:
        console.print(f"  {similarity:.2f}  {escape(left)} ~ {escape(right)}")
    verdict = "[green]meets targets" if report.meets_targets else "[yellow]misses targets"
    console.print(verdict)


def print_usage(rows: list[UsageRow], by: str, console: Console) -> None:
    """The usage table with a total line."""
    table = Table(title=f"Usage by {by}")
    for column in (by, "calls", "retries", "failed", "invalid", "prompt", "cached", "completion",
                   "p50 ms", "p95 ms", "cost $"):
        table.add_column(column, justify="left" if column == by else "right")
    for row in rows:
        table.add_row(escape(row.key), str(row.calls), str(row.retries), str(row.failures),
                      str(row.invalid), str(row.prompt_tokens), str(row.cached_tokens),
                      str(row.completion_tokens), f"{row.latency_percentile(50):.0f}",
                      f"{row.latency_percentile(95):.0f}", f"{row.cost_usd:.4f}")
    console.print(table)
    console.print(f"total: {sum(r.calls for r in rows)} calls, "
                  f"${sum(r.cost_usd for r in rows):.4f}")
