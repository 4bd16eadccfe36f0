"""Images → Character Cards: input checks, the scheduler run, card writing, the run summary."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from . import __version__
from .cards import merge_card, previous_outputs
from .cards.merge import CardMeta, overlay_existing
from .cards.portrait import STORED_IMAGE_SUFFIXES
from .cards.v2 import CharacterCardV2
from .errors import InputError, OutputError, PersonaFoundryError, RunStoppedError
from .files import (
    atomic_write_bytes,
    atomic_write_json,
    check_writable_dir,
    persona_key,
    safe_slug,
    unique_path,
)
from .llm import ChatBackend
from .llm.session import LLMSession, endpoint_error_message
from .llm.structured import StructuredResult
from .nsfw import NsfwLevel
from .population import (
    NameRegistry,
    PersonaDraw,
    PopulationSpec,
    draw_for_image,
    reconcile_with_image,
)
from .scheduler import PersonaJob, Scheduler
from .settings import Settings
from .socialgraph import BatchLinker, Member
from .source_image import (
    SourceImage,
    VisualFacts,
    check_nsfw_allowed,
    extract_visual_facts,
    image_data_url,
    load_source_image,
)
from .stages import STAGES
from .stages.base import PersonaInput, Stage, StageContext, StageResult
from .stages.core import CorePersona
from .store import OutputLayout, card_extension, read_card_json

OutcomeStatus = Literal["ok", "partial", "failed", "skipped"]
# The card key of the stage whose output says who a persona is (its name and handle).
IDENTITY_KEY = next(stage.output_key for stage in STAGES if stage.describes_member)
SEED_HINT_CHARS = 600
MIN_LINKED_BATCH = 2


@dataclass(frozen=True)
class SeedCard:
    """An existing card a run completes: its text steers stage 1 and survives the merge."""

    card: CharacterCardV2
    card_path: Path

    def hint(self) -> str:
        """The existing character, as a hint for stage 1."""
        data = self.card.data
        return (f"Complete this existing character, keeping who they are: {data.name}. "
                f"{data.description[:SEED_HINT_CHARS]} {data.personality[:SEED_HINT_CHARS]}")


@dataclass(frozen=True)
class PersonaRunOptions:
    """What one `persona` command asks for."""

    images: list[Path]
    out_dir: Path
    language: str = "English"
    nsfw_level: NsfwLevel = "off"
    hint: str | None = None
    overwrite: bool = False
    persona_output: Path | None = None
    seeds: dict[Path, SeedCard] = field(default_factory=dict)
    population: PopulationSpec = field(default_factory=PopulationSpec)
    seed: int = 0
    link_batch: bool = True


@dataclass
class PersonaOutcome:
    """One image's result, as the summary reports it."""

    image: Path
    status: OutcomeStatus
    card_path: Path | None = None
    name: str | None = None
    error: str | None = None
    failed_stages: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class RunSummary:
    """A whole run's results."""

    outcomes: list[PersonaOutcome]
    wall_s: float
    backend: str
    fatal_error: str | None = None
    cost_usd: float = 0.0

    @property
    def succeeded(self) -> int:
        """Personas whose card has every stage."""
        return sum(1 for o in self.outcomes if o.status == "ok")

    @property
    def failed(self) -> int:
        """Personas with no card or an incomplete one."""
        return sum(1 for o in self.outcomes if o.status in ("failed", "partial"))

    @property
    def exit_code(self) -> int:
        """0: all complete; 1: some persona failed or is incomplete; 2: nothing could run."""
        if not any(o.card_path for o in self.outcomes) and (self.failed or self.fatal_error):
            return 2
        return 1 if self.failed else 0


class RunProgress(Protocol):
    """What the pipeline tells a progress display."""

    def started(self, total: int, backend: str, window: Callable[[], int | None]) -> None:
        """The run begins with `total` personas; `window` tells the current concurrency."""

    def stage_event(self, kind: str, persona: str, result: StageResult | None) -> None:
        """A stage started, or ended as ok/failed/skipped."""

    def persona_done(self, outcome: PersonaOutcome) -> None:
        """A persona's card was written, or it failed."""


@dataclass
class _Prepared:
    source: SourceImage
    card_path: Path
    previous: dict[str, BaseModel]


class _Run:
    """The state one `generate_personas` call shares between its steps."""

    def __init__(self, options: PersonaRunOptions, session: LLMSession,
                 progress: RunProgress | None) -> None:
        self.options = options
        self.session = session
        self.settings = session.settings
        self.backend = session.backend
        self.progress = progress
        self.registry = NameRegistry()
        self.avoid = ""
        self.draws: dict[Path, PersonaDraw] = {}
        self.keys_to_images: dict[str, Path] = {}
        self.linker: BatchLinker | None = None

    def member(self, key: str, core: BaseModel) -> Member | None:
        """The batch member a finished stage 1 describes."""
        if not isinstance(core, CorePersona):
            return None
        draw = self.draws.get(self.keys_to_images.get(key, Path()))
        return Member(key, core.name, core.handle, core.occupation, core.location,
                      draw.country if draw else "", core.timezone, draw.niche if draw else "")

    async def run_stage(
        self, stage: Stage, ctx: StageContext, persona_key: str, priority: float
    ) -> StructuredResult[BaseModel]:
        """One stage's call, with what it declares: peers before, its member after."""
        if stage.wants_peers and self.linker is not None:
            ctx.peers = await self.linker.peers_text(persona_key)
        if not (stage.describes_member and self.linker is not None):
            return await self._call(stage, ctx, persona_key, priority)
        member = None
        try:
            done = await self._call(stage, ctx, persona_key, priority)
            member = self.member(persona_key, done.output)
            return done
        finally:  # a failed call counts as no member, at once: the batch's peers wait on it
            self.linker.core_finished(persona_key, member)

    async def _call(
        self, stage: Stage, ctx: StageContext, persona_key: str, priority: float
    ) -> StructuredResult[BaseModel]:
        adjust = stage.adjust_schema
        model = self.session.model_for(stage.name, uses_vision_model=stage.uses_vision_model)
        if not (stage.sees_image and self.session.model_sees_images(model)):
            ctx = dataclasses.replace(ctx, persona=dataclasses.replace(ctx.persona,
                                                                       image_data_url=None))
        return await self.session.call(
            stage.output_model, stage.build_messages(ctx), stage=stage.name, persona=persona_key,
            context={**stage.validation_context(ctx), "registry": self.registry,
                     "persona": persona_key},
            priority=priority,
            adjust_schema=(lambda schema: adjust(schema, ctx)) if adjust else None,
            model=model,
        )

    def persona_input(self, prepared: _Prepared, facts: VisualFacts) -> PersonaInput:
        options = self.options
        draw = reconcile_with_image(
            draw_for_image(options.population, options.seed, prepared.source.sha256),
            facts.youngest_apparent_age, facts.apparent_gender,
        )
        self.draws[prepared.source.path] = draw
        return PersonaInput(
            image_name=prepared.source.path.name,
            visual_facts=facts.describe(),
            image_data_url=image_data_url(prepared.source) if self.backend.sees_images else None,
            hint=_hint(options, prepared.source.path),
            language=options.language,
            nsfw_level=options.nsfw_level,
            lorebook_entries=self.settings.lorebook_entries,
            apparent_age=facts.youngest_apparent_age,
            apparent_gender=facts.apparent_gender,
            draw=draw.describe(),
            avoid=self.avoid,
        )

    def claim_folder_names(self, exclude: set[Path]) -> None:
        """Names and handles of the folder's other cards are taken; they form the avoid-list.

        Cards this batch (re)writes are excluded, so a rerun asks stage 1 the same question.
        """
        for path in OutputLayout(self.options.out_dir).card_paths():
            if path.resolve() in exclude:
                continue
            try:
                ours = card_extension(read_card_json(path))
                core = (ours.stage_output(IDENTITY_KEY) if ours else None) or {}
                self.registry.claim(core["name"], core["handle"], f"folder:{path.name}")
                self.registry.occupations.append(core["occupation"])
            except (InputError, ValueError, KeyError, TypeError):
                continue  # not one of ours, or incomplete: nothing to avoid
        names, handles = self.registry.taken()
        if names:
            self.avoid = (f"names: {', '.join(names)}\nhandles: @{', @'.join(handles)}\n"
                          f"occupations: {', '.join(sorted(set(self.registry.occupations)))}")


def _hint(options: PersonaRunOptions, image: Path) -> str | None:
    seed = options.seeds.get(image)
    parts = [part for part in (seed.hint() if seed else None, options.hint) if part]
    return "\n".join(parts) or None


def _card_path(options: PersonaRunOptions, source: SourceImage) -> Path:
    if options.persona_output is not None and len(options.images) == 1:
        return options.persona_output
    return OutputLayout(options.out_dir).card_path(safe_slug(source.stem, fallback="image"))


def _claim_card_path(path: Path, source: SourceImage, overwrite: bool,
                     taken: set[Path]) -> tuple[Path, dict[str, BaseModel]]:
    """Reuse our own card of the same image (resume), overwrite on request, else a fresh name."""
    if path in taken:
        return unique_path(path, taken=taken), {}
    if not path.exists():
        return path, {}
    try:
        card: dict[str, Any] | None = read_card_json(path)
    except InputError:
        card = None  # not a card of ours: never reused
    previous = previous_outputs(card, source.sha256) if card is not None else None
    if previous is not None:
        return path, previous
    if overwrite:
        return path, {}
    return unique_path(path, taken=taken), {}


def _prepare(options: PersonaRunOptions) -> tuple[list[_Prepared], list[PersonaOutcome]]:
    """Load and check every image; bad ones and duplicates become outcomes, not exceptions."""
    prepared: list[_Prepared] = []
    rejected: list[PersonaOutcome] = []
    seen: dict[str, Path] = {}
    taken: set[Path] = set()
    for path in options.images:
        try:
            source = load_source_image(path)
            if source.sha256 in seen:
                rejected.append(PersonaOutcome(
                    path, "skipped", error=f"duplicate of {seen[source.sha256]} in this batch"
                ))
                continue
        except PersonaFoundryError as exc:
            rejected.append(PersonaOutcome(path, "failed", error=str(exc)))
            continue
        seen[source.sha256] = path
        seed = options.seeds.get(path)
        if seed is not None:
            card_path = seed.card_path
            previous = previous_outputs(seed.card.model_dump(mode="json"), None) or {}
        else:
            card_path, previous = _claim_card_path(
                _card_path(options, source), source, options.overwrite, taken
            )
        taken.add(card_path)
        prepared.append(_Prepared(source, card_path, previous))
    return prepared, rejected


def _outcome(prepared: _Prepared, facts: VisualFacts, results: dict[str, StageResult],
             seconds: float, run: _Run) -> PersonaOutcome:
    source = prepared.source
    outcome = PersonaOutcome(
        source.path, "ok", seconds=seconds,
        calls=sum(r.calls for r in results.values()),
        prompt_tokens=sum(r.prompt_tokens for r in results.values()),
        completion_tokens=sum(r.completion_tokens for r in results.values()),
        failed_stages={n: r.error or r.status for n, r in results.items() if r.status != "ok"},
    )
    missing = [s.name for s in STAGES if s.required and results[s.name].status != "ok"]
    if missing:
        outcome.status = "failed"
        outcome.error = f"stage {missing[0]} failed, no card: {results[missing[0]].error}"
        return outcome
    draw = run.draws.get(source.path)
    meta = CardMeta(
        source_image=source.path.name, source_path=str(source.path.resolve()),
        source_sha256=source.sha256,
        visual_facts=facts.model_dump(mode="json"), language=run.options.language,
        nsfw_level=run.options.nsfw_level, generated_at=datetime.now(UTC).isoformat(),
        tool_version=__version__, draw=draw.model_dump() if draw else None,
    )
    card = merge_card(results, meta)
    seed = run.options.seeds.get(source.path)
    if seed is not None:
        card = overlay_existing(card, seed.card)
    atomic_write_json(prepared.card_path, card.model_dump(mode="json"))
    _keep_source_image(source, prepared.card_path)
    outcome.card_path = prepared.card_path
    outcome.name = card.data.name
    if outcome.failed_stages:
        outcome.status = "partial"
        outcome.error = "; ".join(f"{n}: {e}" for n, e in outcome.failed_stages.items())
    return outcome


def _keep_source_image(source: SourceImage, card_path: Path) -> None:
    """A copy of the source image beside its card (`{card stem}{suffix}`), the picture `export`
    uses: it only opens files inside the output folder whose sha256 the card records."""
    suffix = source.path.suffix.lower()
    if suffix not in STORED_IMAGE_SUFFIXES:
        return  # export falls back to a placeholder, or the user's --image
    try:
        data = source.path.read_bytes()
    except OSError as exc:
        raise OutputError(f"cannot copy {source.path} beside its card: {exc}") from exc
    if hashlib.sha256(data).hexdigest() == source.sha256:  # unchanged since it was analysed
        atomic_write_bytes(card_path.with_suffix(suffix), data)


async def _one_persona(run: _Run, scheduler: Scheduler, item: _Prepared, key: str,
                       started: float) -> PersonaOutcome:
    """One persona: its image's facts, its DAG, its card."""
    try:
        # Per persona, off the event loop: the first persona's calls start at once.
        facts = await asyncio.to_thread(extract_visual_facts, item.source)
        check_nsfw_allowed(facts, run.options.nsfw_level, item.source.path)
    except PersonaFoundryError as exc:
        return PersonaOutcome(item.source.path, "failed", error=str(exc))
    run.keys_to_images[key] = item.source.path
    job = PersonaJob(key, run.persona_input(item, facts), item.previous)
    if run.linker is not None:
        for stage in STAGES:
            if stage.describes_member and stage.name in item.previous:
                run.linker.core_finished(key, run.member(key, item.previous[stage.name]))
    results = await scheduler.run_persona(job)
    return _outcome(item, facts, results, time.perf_counter() - started, run)


async def _run_personas(
    run: _Run, prepared: list[_Prepared], outcomes: list[PersonaOutcome]
) -> None:
    """Run every persona's DAG, appending each outcome the moment its card is written."""
    progress = run.progress
    scheduler = Scheduler(STAGES, run.run_stage, progress.stage_event if progress else None)

    async def one(item: _Prepared) -> None:
        started = time.perf_counter()
        key = persona_key(item.card_path)
        try:
            outcome = await _one_persona(run, scheduler, item, key, started)
        finally:
            # Every persona counts in the linker exactly once: a persona that never described
            # its member (bad image, failed stage, a bug) counts as none, or peers wait forever.
            if run.linker is not None:
                run.linker.core_finished(key, None)
        outcomes.append(outcome)
        if progress:
            progress.persona_done(outcome)

    async with asyncio.TaskGroup() as group:
        for item in prepared:
            group.create_task(one(item))


async def generate_personas(
    options: PersonaRunOptions, settings: Settings, *, backend: ChatBackend | None = None,
    progress: RunProgress | None = None,
) -> RunSummary:
    """Build a card for every image: one scheduler, one pool, one ledger for the whole batch."""
    started = time.perf_counter()
    # 1. Check the output folder and the inputs before paying for anything.
    out_dir = options.persona_output.parent if options.persona_output else options.out_dir
    check_writable_dir(out_dir)
    prepared, outcomes = _prepare(options)
    if not prepared:
        return RunSummary(outcomes, time.perf_counter() - started, "none")
    # 2. Open the backend and check it can serve the run at all.
    session = LLMSession.open(settings, out_dir, backend)
    run = _Run(options, session, progress)
    run.claim_folder_names({p.card_path.resolve() for p in prepared})
    if options.link_batch and len(prepared) >= MIN_LINKED_BATCH:
        run.linker = BatchLinker(expected=len(prepared))
    if progress:
        progress.started(len(prepared), session.backend.name, session.window_limit)
    fatal: str | None = None
    try:
        await session.check()
        # 3. Run every persona's DAG; each card is written as soon as its persona is done.
        await _run_personas(run, prepared, outcomes)
        if run.linker is not None:
            written = {persona_key(o.card_path): o.card_path for o in outcomes if o.card_path}
            run.linker.finish(out_dir, written)
    except RunStoppedError as exc:
        fatal = str(exc)
    except ExceptionGroup as group:
        fatal = endpoint_error_message(group)
    finally:
        await session.aclose()
    if fatal is not None:
        done = {o.image for o in outcomes}
        outcomes += [PersonaOutcome(p.source.path, "failed", error=fatal)
                     for p in prepared if p.source.path not in done]
    return RunSummary(outcomes, time.perf_counter() - started, session.backend.name, fatal,
                      session.pool.budget.spent_usd)

