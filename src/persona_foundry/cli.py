"""The `persona-foundry` command line: parse → Settings → asyncio.run → summary. No logic here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from .calendar import calendar_path, ensure_calendar, parse_month, set_slot_status
from .cards import cli as card_commands
from .completion import complete_cards
from .diversity import diversity_report, folder_facts, read_facts
from .errors import PersonaFoundryError
from .files import atomic_write_bytes, check_writable_dir
from .images import cli as image_commands
from .ledger import open_ledger
from .llm.model_store import assemble_default_model
from .llm.session import LLMSession
from .nsfw import NSFW_LEVELS, NsfwChoice
from .pipeline import PersonaRunOptions, generate_personas
from .population import load_population_spec
from .posts import read_posts, render_posts
from .profile import load_profile
from .publish import cli as publish_commands
from .quality import QualityReport, quality_report
from .quality.render import print_quality, quality_html
from .report import (
    RichRunProgress,
    RichTweetProgress,
    print_calendar,
    print_diversity,
    print_summary,
    print_tweet_summary,
    print_usage,
)
from .settings import Settings
from .store import Calendar, OutputLayout, SlotStatus, read_calendar
from .studio import cli as studio_commands
from .tweets import TweetOptions, generate_tweets
from .usage import usage_rows

app = typer.Typer(
    help="Turn character images into complete AI social-media personas (Character Card V2).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
EXIT_USAGE = 2
T = TypeVar("T")


def _settings(**overrides: Any) -> Settings:
    """Settings from env/.env with the flags the user actually gave on top."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        console.print(f"[red bold]error:[/] invalid setting: {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc


def _fail(exc: PersonaFoundryError) -> typer.Exit:
    console.print(f"[red bold]error:[/] {escape(str(exc))}")
    return typer.Exit(EXIT_USAGE)


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log retries.")] = False,
) -> None:
    """Persona Foundry: personas, cards and content from character images."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


@app.command()
def persona(
    images: Annotated[list[Path], typer.Argument(help="Character images (PNG, JPEG, WEBP…).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    persona_output: Annotated[
        Path | None, typer.Option(help="Exact card path (one image only).")
    ] = None,
    language: Annotated[str, typer.Option(help="Language of everything written.")] = "English",
    nsfw_level: Annotated[NsfwChoice, typer.Option(help="Content level.")] = NsfwChoice.off,
    hint: Annotated[str | None, typer.Option(
        help="A hint about the character ('named Ana Ortiz …' sets the name).")] = None,
    max_concurrent: Annotated[
        int | None, typer.Option(help="Calls in flight at once (MAX_CONCURRENT).")
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (LLM_MODEL).")] = None,
    multimodal: Annotated[
        bool | None, typer.Option("--multimodal", help="The model can see the image.")
    ] = None,
    model_path: Annotated[
        Path | None, typer.Option(help="GGUF file for the embedded model.")
    ] = None,
    lorebook_entries: Annotated[int | None, typer.Option(help="Lorebook entries.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace cards of other images.")] = False,
    complete: Annotated[
        bool, typer.Option(help="The inputs are cards (any format): add their missing stages.")
    ] = False,
    population: Annotated[
        Path | None, typer.Option(help="YAML/JSON spec of the batch's attribute and name weights.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the attribute draws.")] = 0,
    link_batch: Annotated[
        bool, typer.Option(help="Let a batch's personas know each other (2+ images).")
    ] = True,
    budget: Annotated[float | None, typer.Option(help="Stop before spending this many $.")] = None,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute allowed.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens per minute allowed.")] = None,
) -> None:
    """Generate one Character Card V2 per image: out/personas/{image}_persona.json."""
    settings = _settings(
        max_concurrent=max_concurrent, llm_base_url=base_url, llm_model=model,
        llm_multimodal=multimodal, local_model_path=model_path,
        lorebook_entries=lorebook_entries, budget_usd=budget, rpm=rpm, tpm=tpm,
    )
    if persona_output is not None and len(images) > 1:
        console.print("[red bold]error:[/] --persona-output takes one image; use --out for many")
        raise typer.Exit(EXIT_USAGE)
    try:
        options = PersonaRunOptions(
            images=images, out_dir=out, language=language,
            nsfw_level=NSFW_LEVELS[nsfw_level.value], hint=hint, overwrite=overwrite,
            persona_output=persona_output, population=load_population_spec(population),
            seed=seed, link_batch=link_batch,
        )
        with RichRunProgress(console) as progress:
            job = (complete_cards(images, options, settings, progress=progress) if complete
                   else generate_personas(options, settings, progress=progress))
            summary = asyncio.run(job)
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    print_summary(summary, console)
    made = [o for o in summary.outcomes if o.card_path]
    if len(made) >= 2:
        facts = [f for f in (read_facts(o.card_path) for o in made if o.card_path) if f]
        print_diversity(diversity_report(facts, options.population), console)
    raise typer.Exit(summary.exit_code)


@app.command()
def diversity(
    folder: Annotated[Path, typer.Argument(help="A personas folder (out/personas).")],
    population: Annotated[
        Path | None, typer.Option(help="The spec the batch was drawn from (targets).")
    ] = None,
) -> None:
    """How diverse a folder of personas is: attributes vs targets, names, similar bios."""
    try:
        report = diversity_report(folder_facts(folder), load_population_spec(population))
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    print_diversity(report, Console())
    raise typer.Exit(0 if report.meets_targets else 1)


app.command()(card_commands.export)
app.command()(card_commands.validate)
app.command("import")(card_commands.import_cards)


def _next_month() -> str:
    today = datetime.now(UTC).date()
    return f"{today.year + today.month // 12}-{today.month % 12 + 1:02d}"


async def _with_session(settings: Settings, out: Path,
                        job: Callable[[LLMSession], Awaitable[T]]) -> T:
    check_writable_dir(out)
    async with LLMSession.open(settings, out) as session:
        return await job(session)


@app.command("calendar")
def calendar_command(
    card: Annotated[Path, typer.Argument(help="A persona card (ours or imported).")],
    month: Annotated[str, typer.Option(help="YYYY-MM (default: next month).")] = "",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    show: Annotated[bool, typer.Option(help="Print the month as a table.")] = False,
    language: Annotated[str, typer.Option(help="Language of the events.")] = "English",
    approve: Annotated[list[str] | None, typer.Option(help="Slot ids to approve.")] = None,
    skip: Annotated[list[str] | None, typer.Option(help="Slot ids to skip.")] = None,
    mark_posted: Annotated[list[str] | None, typer.Option(help="Slot ids now posted.")] = None,
) -> None:
    """Plan (once) and show a persona's month; approve, skip or mark slots posted."""
    month = month or _next_month()

    async def plan(session: LLMSession) -> Calendar:
        await session.check()
        return await ensure_calendar(session, load_profile(card), month, out, language=language)

    try:
        parse_month(month)
        planned = asyncio.run(_with_session(_settings(), out, plan))
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    path = calendar_path(out, planned.persona_key, month)
    problems = []
    moves: tuple[tuple[SlotStatus, list[str] | None], ...] = (
        ("approved", approve), ("skipped", skip), ("posted", mark_posted),
    )
    for status, ids in moves:
        if ids:
            problems += set_slot_status(path, ids, status)
    for problem in problems:
        console.print(f"[yellow]{escape(problem)}")
    planned = read_calendar(path)
    console.print(f"{escape(str(path))}: {len(planned.slots)} slots, "
                  f"{len(planned.events)} events")
    if show:
        print_calendar(planned, Console())
    raise typer.Exit(1 if problems else 0)


@app.command()
def tweets(
    cards: Annotated[list[Path], typer.Argument(help="Persona cards.")],
    count: Annotated[int, typer.Option(help="Posts per persona.", min=1)] = 30,
    month: Annotated[str, typer.Option(help="YYYY-MM (default: next month).")] = "",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    per_call: Annotated[int, typer.Option(
        help="Most slots per LLM call (calls are evened out over whole rounds of the window).",
        min=1, max=32)] = 8,
    language: Annotated[str, typer.Option(help="Language of the posts.")] = "English",
    nsfw_level: Annotated[NsfwChoice, typer.Option(help="Content level.")] = NsfwChoice.off,
    max_concurrent: Annotated[int | None, typer.Option(help="Calls in flight at once.")] = None,
    budget: Annotated[float | None, typer.Option(help="Stop before spending this many $.")] = None,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute allowed.")] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens per minute allowed.")] = None,
    judge: Annotated[bool, typer.Option(
        help="Gate every post on the consistency judge (an LLM call per 8 posts); a failing "
        "post is redone with the judge's reason.")] = False,
) -> None:
    """Write posts for the next planned calendar slots of each persona."""
    options = TweetOptions(
        cards=cards, out_dir=out, month=month or _next_month(), count=count,
        slots_per_call=per_call, language=language, nsfw_level=NSFW_LEVELS[nsfw_level.value],
        judge=judge,
    )
    try:
        parse_month(options.month)
        with RichTweetProgress(console) as progress:
            summary = asyncio.run(_with_session(
                _settings(max_concurrent=max_concurrent, budget_usd=budget, rpm=rpm, tpm=tpm),
                out,
                lambda session: generate_tweets(options, session, progress)))
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    print_tweet_summary(summary, console)
    raise typer.Exit(summary.exit_code)


QUALITY_HTML = Path("quality") / "quality.html"


@app.command()
def quality(
    out: Annotated[Path, typer.Argument(help="An output folder (calendars, tweets, personas).")
                   ] = Path("out"),
    judge: Annotated[bool, typer.Option(
        "--judge/--no-judge", help="Judge each post's consistency with its card (LLM calls, "
        "cached in the ledger).")] = True,
    html: Annotated[Path | None, typer.Option(
        help="Where to write the HTML report (default: OUT/quality/quality.html).")] = None,
) -> None:
    """Diversity, style vs strategy, persona consistency and the worst posts, per
    persona-month and for the batch; exit 1 when a target is missed."""

    async def measure(session: LLMSession) -> QualityReport:
        await session.check()
        return await quality_report(out, session)

    try:
        report = (asyncio.run(_with_session(_settings(), out, measure)) if judge
                  else asyncio.run(quality_report(out, None)))
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    print_quality(report, Console())
    page = html or out / QUALITY_HTML
    page.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(page, quality_html(report).encode("utf-8"))
    console.print(f"HTML report → {escape(str(page))}")
    raise typer.Exit(0 if report.meets_targets else 1)


class PostFormat(StrEnum):
    """--format values of export-posts."""

    csv = "csv"
    json = "json"


@app.command("export-posts")
def export_posts(
    files: Annotated[list[Path], typer.Argument(help="Tweet files (out/tweets/*.json).")],
    fmt: Annotated[PostFormat, typer.Option("--format", "-f")] = PostFormat.csv,
    status: Annotated[str, typer.Option(help="drafted, approved, posted, or all.")] = "all",
    output: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
) -> None:
    """Posts as CSV or JSON for a scheduling tool: date, time, zone, account, text, image, and
    the platform's post id and URL once published."""
    try:
        posts = [post for path in files for post in read_posts(path)
                 if status in ("all", post.status)]
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    text = render_posts(posts, fmt.value)
    if output is None:
        typer.echo(text, nl=False)
    else:
        atomic_write_bytes(output, text.encode("utf-8"))
        console.print(f"{len(posts)} posts → {escape(str(output))}")


class UsageGroup(StrEnum):
    """--by values of usage."""

    persona = "persona"
    stage = "stage"
    model = "model"
    day = "day"
    run = "run"


@app.command()
def usage(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (its ledger).")] = Path(
        "out"),
    by: Annotated[UsageGroup, typer.Option(help="Group rows by.")] = UsageGroup.stage,
) -> None:
    """Tokens, calls, retries, failures, latency and cost recorded in the ledger."""
    path = OutputLayout(out).ledger_path
    if not path.exists():
        console.print(f"[red bold]error:[/] no ledger at {escape(str(path))}")
        raise typer.Exit(EXIT_USAGE)
    ledger = open_ledger(path)
    try:
        rows = usage_rows(ledger.db, by.value, _settings().price_table())
    finally:
        ledger.close()
    print_usage(rows, by.value, Console())


@app.command()
def setup() -> None:
    """Assemble and check the default offline model now (otherwise the first run does it)."""
    settings = _settings()
    try:
        path = assemble_default_model(settings.cache_dir)
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    size_gb = path.stat().st_size / 1e9
    console.print(f"default model ready: {escape(str(path))} ({size_gb:.2f} GB, sha256 checked)")


app.command()(image_commands.images)
app.command()(image_commands.portrait)
app.add_typer(publish_commands.accounts_app, name="accounts")
app.command()(publish_commands.publish)
app.command()(studio_commands.studio)
