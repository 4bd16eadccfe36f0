"""`persona-foundry export`, `validate` and `import`: one line per file, the batch always goes on.

Every way an input file can be bad ends in an InputError (cards/limits.py and the readers), so
each file gets its own `failed …` or problem lines and the next file is still processed.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import PersonaFoundryError
from ..files import check_writable_dir
from .eliza import DEFAULT_ELIZA_PLUGINS
from .exchange import (
    EXPORT_FORMATS,
    ExportFormat,
    ExportOptions,
    load_card,
    save_imported,
    write_exports,
)
from .validate import CardReport, file_report

console = Console(stderr=True)
EXIT_USAGE = 2
MAX_LINES_SHOWN = 30


ALL_FORMATS = "all"
DEFAULT_FORMAT = "png"
# --format values: every entry of EXPORTERS, and `all`.
if TYPE_CHECKING:
    ExportChoice = StrEnum
else:
    ExportChoice = StrEnum("ExportChoice", [(name, name) for name in (*EXPORT_FORMATS,
                                                                        ALL_FORMATS)])
DEFAULT_CHOICE = ExportChoice(DEFAULT_FORMAT)


def _shown(text: object) -> str:
    """text for the terminal: rich markup escaped, undecodable file-name bytes as `\\xNN`."""
    return escape(str(text).encode("utf-8", "backslashreplace").decode("utf-8"))


def export(
    cards: Annotated[list[Path], typer.Argument(help="Card files (ours or any V1/V2/V3 card).")],
    fmt: Annotated[
        list[ExportChoice], typer.Option("--format", "-f", help="Format(s); repeatable.")
    ] = [DEFAULT_CHOICE],  # noqa: B006  # typer reads list defaults, never mutates them
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out/exports"),
    image: Annotated[
        Path | None, typer.Option(help="Picture for PNG/CHARX (default: the card's own).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(
        help="Replace files already in the output folder (never one this run wrote).")] = False,
    eliza_plugin: Annotated[list[str] | None, typer.Option(
        "--eliza-plugin", help="A plugin the ElizaOS export lists; repeatable (default: "
        f"{', '.join(DEFAULT_ELIZA_PLUGINS)}).")] = None,
) -> None:
    """Export cards as V2/V3 JSON, PNG cards, CHARX archives or ElizaOS characters."""
    values = [choice.value for choice in fmt]
    wanted: tuple[ExportFormat, ...] = EXPORT_FORMATS if ALL_FORMATS in values else tuple(values)
    options = ExportOptions(wanted, out, image, overwrite,
                            tuple(eliza_plugin or DEFAULT_ELIZA_PLUGINS))
    try:
        check_writable_dir(out)
    except PersonaFoundryError as exc:
        console.print(f"[red bold]error:[/] {_shown(exc)}")
        raise typer.Exit(EXIT_USAGE) from exc
    taken: set[Path] = set()
    failed = 0
    for path in cards:
        try:
            result = write_exports(load_card(path), options, taken)
        except PersonaFoundryError as exc:
            failed += 1
            console.print(f"[red]failed[/] {_shown(exc)}")
            continue
        for note in result.notes:
            console.print(f"[yellow]note[/] {_shown(path)}: {_shown(note)}")
        for target in result.written:
            console.print(f"[green]wrote[/] {_shown(target)}")
    raise typer.Exit(1 if failed else 0)


def validate(
    files: Annotated[list[Path], typer.Argument(help="Card files: JSON, PNG or CHARX.")],
) -> None:
    """Report what importers would reject each card for, and warnings; exit 1 on any problem."""
    bad = 0
    for path in files:
        report = file_report(path)
        bad += bool(report.problems)
        _print_report(path, report)
    raise typer.Exit(1 if bad else 0)


def _print_report(path: Path, report: CardReport) -> None:
    if report.problems:
        console.print(f"[red]{len(report.problems)} problem(s)[/] {_shown(path)}")
    else:
        warned = f" ({len(report.warnings)} warning(s))" if report.warnings else ""
        console.print(f"[green]ok[/]{warned} {_shown(path)}")
    lines = [f"  - {_shown(p)}" for p in report.problems]
    lines += [f"  [yellow]warning:[/] {_shown(w)}" for w in report.warnings]
    for line in lines[:MAX_LINES_SHOWN]:
        console.print(line)
    if len(lines) > MAX_LINES_SHOWN:
        console.print(f"  … and {len(lines) - MAX_LINES_SHOWN} more")


def import_cards(
    files: Annotated[list[Path], typer.Argument(help="V1/V2/V3 JSON, PNG or CHARX cards.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
) -> None:
    """Bring cards from other tools in as ours (out/personas/…), image included."""
    failed = 0
    for path in files:
        try:
            saved = save_imported(load_card(path), out)
        except PersonaFoundryError as exc:
            failed += 1
            console.print(f"[red]failed[/] {_shown(exc)}")
            continue
        console.print(f"[green]imported[/] {_shown(path)} → {_shown(saved)}")
    raise typer.Exit(1 if failed else 0)
