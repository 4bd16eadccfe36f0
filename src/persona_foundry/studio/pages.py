"""The studio's pages (GET): gallery, persona, calendar, post editor, generate, usage, files.

Each view gathers what the same CLI functions compute (diversity_report, usage_rows, the
exports) from the store, and hands it to a template; none writes a file.
"""

from __future__ import annotations

import calendar as gregorian
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

import orjson
from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from ..cards.exchange import (
    EXPORT_FORMATS,
    EXPORT_SUFFIXES,
    ExportFormat,
    ExportOptions,
    load_card,
    write_exports,
)
from ..diversity import diversity_report, folder_facts
from ..ledger import open_ledger
from ..quality.render import quality_body
from ..quality.report import quality_report
from ..stages import STAGES
from ..store import SLOT_STATUSES
from ..textchecks import MAX_WEIGHTED_LENGTH, weighted_length
from ..usage import GROUP_COLUMNS, GroupBy, usage_rows
from .charts import GraphDrawing, bar_chart, graph_drawing
from .context import is_htmx, studio_of
from .editing import post_problems, rules_for
from .reading import NotFoundError, PersonaView, PostView, SlotView
from .security import SERVED_SUFFIXES, served_file

VIEWS = ("month", "week", "list")
CARD_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example",
               "creator_notes", "system_prompt", "post_history_instructions")
SHOWN_STAGES = ("strategy", "example_tweets", "social", "authenticity", "visual", "lorebook")


def not_found(request: Request, message: str) -> Response:
    """The 404 page."""
    return studio_of(request).page(request, "error.html", 404, title="Not found",
                                   message=message)


def gallery(request: Request) -> Response:
    """Every persona as a card, the batch's social graph and diversity warnings."""
    studio = studio_of(request)
    personas, problems = studio.reader.personas()
    report = diversity_report(folder_facts(studio.layout.personas_dir))
    warnings = [f"duplicate name: {name}" for name in report.duplicate_names]
    warnings += [f"duplicate handle: @{handle}" for handle in report.duplicate_handles]
    if report.bio_pairs and not report.meets_targets and report.near_duplicate_pairs:
        warnings.append(f"{report.near_duplicate_share:.0%} of bio pairs are near duplicates")
    return studio.page(request, "gallery.html", personas=personas, problems=problems,
                       warnings=warnings, graph=_graph(studio.layout.graph_path),
                       stage_names=[stage.name for stage in STAGES])


def _graph(path: Path) -> GraphDrawing | None:
    try:
        graph = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    nodes = [(str(node.get("id")), str(node.get("name", node.get("id"))))
             for node in graph.get("nodes", []) if isinstance(node, dict)]
    edges = [(str(edge.get("source")), str(edge.get("target")), str(edge.get("relation", "")))
             for edge in graph.get("edges", []) if isinstance(edge, dict)]
    return graph_drawing(nodes, edges) if nodes else None


def persona_page(request: Request, message: str | None = None, status: int = 200) -> Response:
    """Every stage of one persona, its editable card fields and its downloads."""
    studio = studio_of(request)
    try:
        persona = studio.reader.persona(request.path_params["key"])
    except NotFoundError as exc:
        return not_found(request, str(exc))
    strategy = persona.stage("strategy") or {}
    pillars = [(str(p.get("name", "")), float(p.get("share_percent", 0)),
                f"{p.get('share_percent', 0)} %") for p in strategy.get("pillars", [])
               if isinstance(p, dict)]
    return studio.page(request, "persona.html", status, persona=persona, fields=CARD_FIELDS,
                       pillar_chart=bar_chart(pillars), stages=_stage_sections(persona),
                       formats=EXPORT_FORMATS, months=studio.reader.months(persona.key),
                       message=message or request.query_params.get("message"))


def _stage_sections(persona: PersonaView) -> list[tuple[str, Any]]:
    """Each shown stage's output (or the lorebook of the card), as name and value."""
    sections: list[tuple[str, Any]] = [("core", persona.core)]
    for name in SHOWN_STAGES:
        value = persona.stage(name)
        if name == "lorebook" and value is None:
            value = persona.data.get("character_book")
        sections.append((name, value))
    return sections


def export_download(request: Request) -> Response:
    """A card in one export format, written by the `export` command's function."""
    studio = studio_of(request)
    fmt = request.path_params["fmt"]
    if fmt not in EXPORT_FORMATS:
        return not_found(request, f"no export format {fmt!r}")
    try:
        persona = studio.reader.persona(request.path_params["key"])
        loaded = load_card(persona.path)
    except NotFoundError as exc:
        return not_found(request, str(exc))
    folder = Path(tempfile.mkdtemp(prefix="pf-studio-export-"))
    chosen = cast(ExportFormat, fmt)
    written = write_exports(loaded, ExportOptions((chosen,), folder)).written
    return FileResponse(written[0], filename=f"{persona.key}{EXPORT_SUFFIXES[chosen]}",
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


@dataclass(frozen=True)
class CalendarQuery:
    """What the calendar page shows: whose month, which view, which filters."""

    persona: str
    month: str
    view: str
    status: str
    pillar: str
    week: int

    @classmethod
    def of(cls, request: Request, months: list[str]) -> CalendarQuery:
        """The query from the address, with defaults (the latest month planned)."""
        params = request.query_params
        month = params.get("month") or (months[-1] if months else date.today().strftime("%Y-%m"))
        view = params.get("view", "month")
        week = params.get("week", "0")
        return cls(params.get("persona", ""), month, view if view in VIEWS else "month",
                   params.get("status", ""), params.get("pillar", ""),
                   int(week) if week.isdigit() else 0)

    def keep(self, view: SlotView) -> bool:
        """The slot passes the status and pillar filters."""
        return ((not self.status or view.slot.status == self.status)
                and (not self.pillar or view.slot.pillar == self.pillar))


def calendar_page(request: Request) -> Response:
    """A month (or week, or list) of one persona's or everyone's slots."""
    studio = studio_of(request)
    personas, _ = studio.reader.personas()
    keys = [p.key for p in personas]
    query = CalendarQuery.of(request, studio.reader.months(query_key(request, keys)))
    chosen = [query.persona] if query.persona in keys else keys
    slots, problems = studio.reader.slots(query.month, chosen)
    pillars = sorted({view.slot.pillar for view in slots})
    shown = [view for view in slots if query.keep(view)]
    weeks = month_weeks(query.month)
    if query.view == "week":
        weeks = [weeks[min(query.week, len(weeks) - 1)]]
    by_day: dict[str, list[SlotView]] = {}
    for view in shown:
        by_day.setdefault(view.when.date().isoformat(), []).append(view)
    counts = Counter(view.slot.status for view in slots)
    return studio.page(request, "calendar.html", query=query, personas=personas, weeks=weeks,
                       by_day=by_day, shown=shown, pillars=pillars, statuses=SLOT_STATUSES,
                       counts=counts, problems=problems, months=studio.reader.months(),
                       week_count=len(month_weeks(query.month)), views=VIEWS,
                       url_for_files=studio.reader.relative)


def query_key(request: Request, keys: list[str]) -> str | None:
    """The persona the address names, when it is one of the folder's."""
    key = request.query_params.get("persona", "")
    return key if key in keys else None


def month_weeks(month: str) -> list[list[tuple[str, int, bool]]]:
    """The month as weeks of (ISO day, day number, inside the month), Monday first."""
    try:
        year, number = (int(part) for part in month.split("-"))
        weeks = gregorian.Calendar(firstweekday=0).monthdatescalendar(year, number)
    except ValueError:
        return []
    return [[(day.isoformat(), day.day, day.month == number) for day in week] for week in weeks]


def post_page(request: Request) -> Response:
    """The post editor: the text, its live checks, the image and the actions."""
    studio = studio_of(request)
    try:
        post = studio.reader.post(*path_slot(request))
    except NotFoundError as exc:
        return not_found(request, str(exc))
    return editor(request, post)


def path_slot(request: Request) -> tuple[str, str, str]:
    """(persona, month, slot id) from the address."""
    params = request.path_params
    return params["key"], params["month"], params["slot"]


def editor(request: Request, post: PostView, status: int = 200, *, text: str | None = None,
           message: str = "", problems: list[str] | None = None,
           conflict: str | None = None) -> Response:
    """The editor (a whole page, or the `#editor` fragment for htmx) for `post`."""
    studio = studio_of(request)
    shown = text if text is not None else (post.record.text if post.record else post.slot.text
                                           or "")
    if problems is None:
        problems = (post_problems(shown, rules_for(studio.reader, post.calendar.persona_key),
                                  post) if shown else [])
    record = post.record
    image = studio.reader.relative(record.image_path if record else post.slot.image_path)
    quarantined = bool(record and record.image_status == "quarantined")
    template = "_editor.html" if is_htmx(request) else "post.html"
    return studio.page(request, template, status, post=post, text=shown,
                       length=weighted_length(shown), max_length=MAX_WEIGHTED_LENGTH,
                       problems=problems, message=message, conflict=conflict,
                       image=None if quarantined else image,
                       quarantine=image if quarantined else None)


def checks_fragment(request: Request, post: PostView, text: str) -> Response:
    """The live check list for a text being typed (nothing saved)."""
    studio = studio_of(request)
    problems = post_problems(text, rules_for(studio.reader, post.calendar.persona_key),
                             post) if text else ["empty"]
    return studio.page(request, "_checks.html", problems=problems,
                       length=weighted_length(text), max_length=MAX_WEIGHTED_LENGTH)


def generate_page(request: Request) -> Response:
    """The form that fills a persona's open slots (the `tweets` command)."""
    studio = studio_of(request)
    personas, _ = studio.reader.personas()
    return studio.page(request, "generate.html", personas=personas,
                       months=studio.reader.months(),
                       chosen=request.query_params.get("persona", ""))


def job_page(request: Request) -> Response:
    """A background job's progress (the fragment polls itself while it runs)."""
    studio = studio_of(request)
    job = studio.jobs.get(request.path_params["job"])
    if job is None:
        return not_found(request, "no such job (the studio was restarted?)")
    month = request.query_params.get("month", "")
    slots: list[SlotView] = []
    if month:
        slots, _ = studio.reader.slots(month, [job.persona])
    drafted = [view for view in slots if view.slot.text]
    template = "_job.html" if is_htmx(request) else "job.html"
    return studio.page(request, template, job=job, month=month, drafted=drafted)


def usage_page(request: Request) -> Response:
    """Tokens, calls, failures and cost from the ledger, by persona, stage, model or day."""
    studio = studio_of(request)
    wanted = request.query_params.get("by", "persona")
    by = cast(GroupBy, wanted if wanted in GROUP_COLUMNS else "persona")
    rows = []
    if studio.layout.ledger_path.is_file():
        ledger = open_ledger(studio.layout.ledger_path)
        try:
            rows = usage_rows(ledger.db, by, studio.settings.price_table())
        finally:
            ledger.close()
    chart = bar_chart([(row.key, row.prompt_tokens + row.completion_tokens,
                        f"{row.prompt_tokens + row.completion_tokens:,} tokens") for row in rows])
    return studio.page(request, "usage.html", rows=rows, by=by, groups=list(GROUP_COLUMNS),
                       chart=chart)


async def quality_page(request: Request) -> Response:
    """The quality report's deterministic measures (diversity, style vs strategy, worst posts);
    the LLM judge's verdicts stay with `persona-foundry quality`, which pays for them."""
    studio = studio_of(request)
    report = await quality_report(studio.layout.root, None)
    return studio.page(request, "quality.html", body=Markup(quality_body(report)),
                       months=len(report.months), skipped=report.skipped)


def output_file(request: Request) -> Response:
    """An image from inside the output folder (nothing else, whatever the path says)."""
    studio = studio_of(request)
    path = served_file(studio.layout, request.path_params["path"])
    if path is None:
        return Response("not found", 404, media_type="text/plain")
    return FileResponse(path, media_type=SERVED_SUFFIXES[path.suffix.lower()])


def read_problem(request: Request, exc: Exception) -> Response:
    """A file the page needs cannot be read: say which and why."""
    return studio_of(request).page(request, "error.html", 500, title="Unreadable file",
                                   message=str(exc))
