"""The quality report shown two ways from one table of measures: rich tables in the terminal
and one self-contained HTML file (inline CSS and SVG, nothing fetched)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table

from .metrics import MAX_NGRAM, DiversityScores
from .report import MIN_HABITS_MET, MonthQuality, QualityReport
from .style import PillarStyle
from .svg import bar_chart, line_chart


@dataclass(frozen=True)
class Measure:
    """A diversity column: its name, how to read it, and which way is better."""

    name: str
    value: Callable[[DiversityScores], float]
    fmt: str
    better: str  # "higher" | "lower"
    scale: float  # the chart's axis end


MEASURES = (
    Measure("distinct-1", lambda d: d.distinct_1, ".2f", "higher", 1.0),
    Measure("distinct-2", lambda d: d.distinct_2, ".2f", "higher", 1.0),
    Measure(f"n-gram diversity (max {MAX_NGRAM})", lambda d: d.ngram_diversity, ".2f", "higher",
            float(MAX_NGRAM)),
    Measure("compression ratio", lambda d: d.compression_ratio, ".2f", "lower", 5.0),
    Measure("self-repetition (4-grams)", lambda d: d.self_repetition, ".2f", "lower", 5.0),
    Measure("posts sharing a 6-gram", lambda d: d.long_ngram_share, ".1%", "lower", 1.0),
    Measure("self-BLEU", lambda d: d.self_bleu, ".3f", "lower", 1.0),
    Measure("near duplicates", lambda d: d.near_duplicate_share, ".1%", "lower", 1.0),
)
# Short headers: ten columns must fit an 80-column terminal.
STYLE_COLUMNS: tuple[tuple[str, Callable[[PillarStyle], str]], ...] = (
    ("posts", lambda s: str(s.posts)),
    ("share", lambda s: f"{s.share:.0%}"),
    ("target", lambda s: "—" if s.target_share is None else f"{s.target_share:.0%}"),
    ("len", lambda s: f"{s.mean_length:.0f}"),
    ("#/post", lambda s: f"{s.hashtags_per_post:.2f}"),
    ("emoji", lambda s: f"{s.emoji_per_post:.2f}"),
    ("URL", lambda s: f"{s.url_rate:.0%}"),
    ("?", lambda s: f"{s.question_rate:.0%}"),
    ("I/we", lambda s: f"{s.first_person_rate:.0%}"),
    ("habits", lambda s: f"{s.habits_met:.0%}"),
)


def _rows(report: QualityReport) -> list[tuple[str, DiversityScores]]:
    rows = [(f"{month.persona} {month.month}", month.diversity) for month in report.months]
    if len(report.months) > 1:
        rows.append(("batch, pooled", report.pooled))
        rows.append(("batch, across personas (BLEU vs others)", report.across_personas))
    return rows


def _month_facts(month: MonthQuality) -> str:
    rate = "not judged" if month.consistency is None else f"{month.consistency:.0%}"
    return (f"{len(month.posts)} posts · consistency {rate} · example near-duplicate pairs "
            f"{month.example_duplicates} · posts copying an example {month.copied_examples}")


def print_quality(report: QualityReport, console: Console) -> None:
    """The report as rich tables."""
    # Measures down, persona-months across: a terminal is narrower than there are measures.
    table = Table(title="Diversity (Shaib et al. 2024)")
    table.add_column("measure")
    table.add_column("better")
    rows = _rows(report)
    for label, _ in rows:
        table.add_column(rich_escape(label), justify="right")
    for measure in MEASURES:
        table.add_row(measure.name, measure.better,
                      *(format(measure.value(scores), measure.fmt) for _, scores in rows))
    console.print(table)
    for month in report.months:
        style = Table(title=f"Style vs strategy: {rich_escape(month.persona)} {month.month}")
        style.add_column("pillar", no_wrap=True, max_width=16)
        for name, _ in STYLE_COLUMNS:
            style.add_column(name, justify="right")
        for row in month.style:
            style.add_row(rich_escape(row.pillar), *(cell(row) for _, cell in STYLE_COLUMNS))
        console.print(style)
        console.print(rich_escape(_month_facts(month)))
        for week, rate in month.drift:
            console.print(f"  consistency {week}: {'—' if rate is None else f'{rate:.0%}'}")
        for offender in month.offenders:
            console.print(f"  [bold]{rich_escape(offender.slot_id)}[/] "
                          f"{rich_escape(offender.text[:90])!s}\n"
                          f"    → {rich_escape('; '.join(offender.reasons))}")
    targets = Table(title="Targets")
    for column in ("measure", "value", "target", "met"):
        targets.add_column(column)
    for target in report.targets():
        met = "stated" if target.met is None else ("yes" if target.met else "[red]no[/]")
        targets.add_row(rich_escape(target.name), target.value, target.target, met)
    console.print(targets)
    if report.judge is not None:
        judge = report.judge
        console.print(f"judge: {judge.calls} calls ({judge.cached_calls} from the ledger's "
                      f"cache), {judge.prompt_tokens} prompt + {judge.completion_tokens} "
                      f"completion tokens, ${report.judge_cost_usd:.4f}")
    for skipped in report.skipped:
        console.print(f"[yellow]skipped {rich_escape(skipped)}")


CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
th{background:#f3f3f3}td.num{text-align:right}.chart{display:block;margin:1em 0}
.no{color:#b4443b;font-weight:bold}.offender{margin:.4em 0}.slot-id{font-family:monospace}"""


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    header = "".join(f"<th>{escape(cell)}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def _diversity_html(report: QualityReport) -> str:
    rows = [[escape(label), *(format(m.value(s), m.fmt) for m in MEASURES)]
            for label, s in _rows(report)]
    charts = [bar_chart(f"{m.name} ({m.better} is better)",
                        [(label, m.value(s), None) for label, s in _rows(report)], scale=m.scale,
                        fmt=m.fmt)
              for m in MEASURES if m.name in ("self-BLEU", "distinct-2", "near duplicates")]
    return (_html_table(["persona-month", *(f"{m.name} ({m.better} better)" for m in MEASURES)],
                        rows) + "".join(charts))


def _month_html(month: MonthQuality) -> str:
    style_rows = [[escape(row.pillar), *(escape(cell(row)) for _, cell in STYLE_COLUMNS)]
                  for row in month.style]
    habits = bar_chart("habits met per pillar", [
        (row.pillar, row.habits_met, row.habits_met >= MIN_HABITS_MET) for row in month.style],
        scale=1.0, target=MIN_HABITS_MET, fmt=".0%")
    drift = line_chart("consistency over the month", month.drift) if month.drift else ""
    worst = "".join(
        f'<div class="offender"><span class="slot-id">{escape(o.slot_id)}</span> '
        f"{escape(o.text)}<br>→ {escape('; '.join(o.reasons))}</div>" for o in month.offenders)
    return (f"<h2>{escape(month.persona)} — {escape(month.month)}</h2>"
            f"<p>{escape(_month_facts(month))}</p>"
            + _html_table(["pillar", *(name for name, _ in STYLE_COLUMNS)], style_rows)
            + habits + drift + "<h3>Worst posts</h3>" + (worst or "<p>none</p>"))


def quality_body(report: QualityReport) -> str:
    """The report's content as HTML (every model or user text escaped): the HTML file's body
    and the studio's Quality page."""
    targets = [[escape(t.name), escape(t.value), escape(t.target),
                "stated" if t.met is None else ("yes" if t.met else '<span class="no">no</span>')]
               for t in report.targets()]
    judge = ""
    if report.judge is not None:
        j = report.judge
        judge = (f"<p>Judge: {j.calls} calls ({j.cached_calls} from the ledger's cache), "
                 f"{j.prompt_tokens} prompt + {j.completion_tokens} completion tokens, "
                 f"${report.judge_cost_usd:.4f}.</p>")
    return ("<h1>Content quality</h1>" + _html_table(["measure", "value", "target", "met"],
                                                     targets)
            + judge + "<h2>Diversity</h2>" + _diversity_html(report)
            + "".join(_month_html(month) for month in report.months))


def quality_html(report: QualityReport) -> str:
    """The whole report as one self-contained HTML page."""
    body = quality_body(report)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>Persona Foundry quality report</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")
