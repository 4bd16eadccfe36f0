"""`persona-foundry export`, `validate` and `import`: one line per file, the batch goes on."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import PersonaFoundryError
from .exchange import EXPORT_FORMATS, ExportFormat, export_card, load_card, save_imported
from .validate import file_problems

console = Console(stderr=True)


class ExportChoice(StrEnum):
    """--format values."""

    v2 = "v2"
    v3 = "v3"
    png = "png"
    charx = "charx"
    eliza = "eliza"
    all = "all"


def export(
    cards: Annotated[list[Path], typer.Argument(help="Card files (ours or any V1/V2/V3 card).")],
    fmt: Annotated[
        list[ExportChoice], typer.Option("--format", "-f", help="Format(s); repeatable.")
    ] = [ExportChoice.png],  # noqa: B006  # typer reads list defaults, never mutates them
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out/exports"),
    image: Annotated[
        Path | None, typer.Option(help="Picture for PNG/CHARX (default: the card's own).")
    ] = None,
) -> None:
    """Export cards as V2/V3 JSON, PNG cards, CHARX archives or ElizaOS characters."""
    wanted = EXPORT_FORMATS if ExportChoice.all in fmt else tuple(
        cast(ExportFormat, choice.value) for choice in fmt
    )
    failed = 0
    for path in cards:
        try:
            written = export_card(load_card(path), wanted, out, image)
        except PersonaFoundryError as exc:
            failed += 1
            console.print(f"[red]failed[/] {escape(str(exc))}")
            continue
        for target in written:
            console.print(f"[green]wrote[/] {escape(str(target))}")
    raise typer.Exit(1 if failed else 0)


def validate(
    files: Annotated[list[Path], typer.Argument(help="Card files: JSON, PNG or CHARX.")],
) -> None:
    """Report every problem an importer would reject each card for; exit 1 if any."""
    bad = 0
    for path in files:
        problems = file_problems(path)
        if not problems:
            console.print(f"[green]ok[/] {escape(str(path))}")
            continue
        bad += 1
        console.print(f"[red]{len(problems)} problem(s)[/] {escape(str(path))}")
        for problem in problems:
            console.print(f"  - {escape(problem)}")
    raise typer.Exit(1 if bad else 0)


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
            console.print(f"[red]failed[/] {escape(str(exc))}")
            continue
        console.print(f"[green]imported[/] {escape(str(path))} → {escape(str(saved))}")
    raise typer.Exit(1 if failed else 0)
