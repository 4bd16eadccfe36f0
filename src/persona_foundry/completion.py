"""`persona --complete`: generate the stages an existing card (ours or another tool's) lacks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .cards.exchange import load_card, save_imported
from .errors import InputError, PersonaFoundryError
from .llm import ChatBackend
from .pipeline import (
    PersonaOutcome,
    PersonaRunOptions,
    RunProgress,
    RunSummary,
    SeedCard,
    generate_personas,
)
from .profile import source_image_path
from .settings import Settings

NO_IMAGE = ("the card carries no image to read the persona from (an image it names is read only "
            "from its output folder, beside the card, with the hash the card records); export it "
            "as a PNG card, or run `persona IMAGE --hint …` instead")


def seed_from(path: Path, out_dir: Path) -> tuple[Path, SeedCard]:
    """The image to read and the seed for one card; our own JSON cards are completed in place."""
    loaded = load_card(path)
    source = source_image_path(path, loaded.card.data.extensions)
    if loaded.format == "chara_card_v2" and source is not None:
        return source, SeedCard(loaded.card, path)
    if loaded.image_png is None:
        raise InputError(path, NO_IMAGE)
    saved = save_imported(loaded, out_dir)
    imported = load_card(saved)
    image = source_image_path(saved, imported.card.data.extensions)
    if image is None:
        raise InputError(path, NO_IMAGE)
    return image, SeedCard(imported.card, saved)


async def complete_cards(
    cards: list[Path], options: PersonaRunOptions, settings: Settings, *,
    backend: ChatBackend | None = None, progress: RunProgress | None = None,
) -> RunSummary:
    """Run the pipeline on each card's image, reusing its stages and keeping its own text."""
    seeds: dict[Path, SeedCard] = {}
    rejected: list[PersonaOutcome] = []
    for path in cards:
        try:
            image, seed = seed_from(path, options.out_dir)
        except PersonaFoundryError as exc:
            rejected.append(PersonaOutcome(path, "failed", error=str(exc)))
            continue
        seeds[image] = seed
    if not seeds:
        return RunSummary(rejected, 0.0, "none")
    run_options = dataclasses.replace(options, images=list(seeds), seeds=seeds)
    summary = await generate_personas(run_options, settings, backend=backend, progress=progress)
    summary.outcomes[:0] = rejected
    return summary
