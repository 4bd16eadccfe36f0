"""The `persona-foundry` command line: parse → Settings → asyncio.run → summary. No logic here."""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from .errors import PersonaFoundryError
from .llm.model_store import assemble_default_model
from .pipeline import PersonaRunOptions, generate_personas
from .report import RichRunProgress, print_summary
from .settings import Settings
from .stages.base import NsfwLevel

app = typer.Typer(
    help="Turn character images into complete AI social-media personas (Character Card V2).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
EXIT_USAGE = 2


class NsfwChoice(StrEnum):
    """--nsfw-level values; `disabled`/`enabled` are the original tool's spellings."""

    off = "off"
    suggestive = "suggestive"
    explicit = "explicit"
    disabled = "disabled"
    enabled = "enabled"


NSFW_LEVELS: dict[str, NsfwLevel] = {
    "off": "off", "suggestive": "suggestive", "explicit": "explicit",
    "disabled": "off", "enabled": "explicit",
}


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
    hint: Annotated[str | None, typer.Option(help="A hint about the character.")] = None,
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
) -> None:
    """Generate one Character Card V2 per image: out/personas/{image}_persona.json."""
    settings = _settings(
        max_concurrent=max_concurrent, llm_base_url=base_url, llm_model=model,
        llm_multimodal=multimodal, local_model_path=model_path,
        lorebook_entries=lorebook_entries,
    )
    if persona_output is not None and len(images) > 1:
        console.print("[red bold]error:[/] --persona-output takes one image; use --out for many")
        raise typer.Exit(EXIT_USAGE)
    options = PersonaRunOptions(
        images=images, out_dir=out, language=language, nsfw_level=NSFW_LEVELS[nsfw_level.value],
        hint=hint, overwrite=overwrite, persona_output=persona_output,
    )
    try:
        with RichRunProgress(console) as progress:
            summary = asyncio.run(generate_personas(options, settings, progress=progress))
    except PersonaFoundryError as exc:
        raise _fail(exc) from exc
    print_summary(summary, console)
    raise typer.Exit(summary.exit_code)


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
