"""Images → Character Cards: input checks, the scheduler run, card writing, the run summary."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import hashlib
import time
from collections.abc import Awaitable, Callable
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
from .identity_index import folder_identities
from .llm import ChatBackend
from .llm.session import LLMSession, endpoint_error_message
from .llm.structured import StructuredResult
from .nsfw import NsfwLevel
from .population import (
    NameRegistry,
    NameSource,
    PersonaDraw,
    PopulationSpec,
    claim_fixed_identity,
    draw_for_image,
    draw_identity,
    name_in_hint,
    reconcile_with_image,
)
from .scheduler import PersonaJob, Scheduler
from .settings import Settings
from .socialgraph import BatchLinker, Member
from .source_image import (
    ImageRead,
    ReadAhead,
    SourceImage,
    VisualFacts,
    load_source_image,
    read_image,
)
from .stages import STAGES
from .stages.base import PersonaInput, Stage, StageContext, StageResult
from .stages.core import CorePersona
from .store import OutputLayout, read_card_json
from .textchecks import warm_up_checks

OutcomeStatus = Literal["ok", "partial", "failed", "skipped"]
# The stage whose output says who a persona is (its name and handle).
IDENTITY_STAGE = next(stage.name for stage in STAGES if stage.describes_member)
SEED_HINT_CHARS = 600
MIN_LINKED_BATCH = 2
# Personas admitted at once, per call slot of MAX_CONCURRENT: enough ready calls to keep every
# slot busy (each persona has up to five calls ready after stage 1), few enough that a batch's
# memory is what is in flight, not the whole batch. A linked cohort is half of it, so the next
# cohort is admitted while one waits for its last stage 1. The floor keeps a small window's
# image reading overlapped with its calls.
PERSONAS_PER_CALL_SLOT = 4
MIN_PERSONAS_IN_FLIGHT = 8



@dataclass(frozen=True)
class _Known:
    """What a persona's declared inputs are drawn from once it is admitted."""

    settings: Settings
    facts: VisualFacts
    draw: PersonaDraw


# Where each input a stage may declare (stages/base.InputParam) comes from: one line each. A
# new stage that reads one of these declares it in its module; a new input adds one line here.
# Persona inputs are known when the persona is admitted (before any of its calls)…
PERSONA_INPUTS: dict[str, Callable[[_Known], Any]] = {
    "lorebook_entries": lambda known: known.settings.lorebook_entries,
    "apparent_age": lambda known: known.facts.youngest_apparent_age,
    "apparent_gender": lambda known: known.facts.apparent_gender,
    "draw": lambda known: known.draw.describe(),
    "name": lambda known: known.draw.name,
    "handle": lambda known: known.draw.handle,
}
# …batch inputs once the batch linker knows them: a stage declaring one waits for its cohort
# (in an unlinked run it gets the input's default).
BATCH_INPUTS: dict[str, Callable[[BatchLinker, str], Awaitable[Any]]] = {
    "peers": lambda linker, key: linker.peers_text(key),
}


def check_inputs(stages: tuple[Stage, ...]) -> None:
    """Refuse a declared input that no table above supplies (it would silently be its default)."""
    for stage in stages:
        unknown = [param.name for param in stage.inputs
                   if param.name not in PERSONA_INPUTS and param.name not in BATCH_INPUTS]
        if unknown:
            raise ValueError(f"stage {stage.name!r} declares inputs {unknown} that nothing "
                             "supplies: add them to PERSONA_INPUTS or BATCH_INPUTS")


check_inputs(STAGES)
_DECLARED_INPUTS = frozenset(param.name for stage in STAGES for param in stage.inputs)


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
    """An image checked and hashed (not decoded: it is decoded when its persona is admitted)."""

    path: Path
    sha256: str
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
        self.draws: dict[Path, PersonaDraw] = {}
        self.keys_to_images: dict[str, Path] = {}
        self.linker: BatchLinker | None = None
        self.in_flight = max(MIN_PERSONAS_IN_FLIGHT,
                             PERSONAS_PER_CALL_SLOT * self.settings.max_concurrent)

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
        """One stage's call, with what it declares: batch inputs before, its member after."""
        if self.linker is not None:
            for param in stage.inputs:
                supply = BATCH_INPUTS.get(param.name)
                if supply is not None:
                    ctx.inputs[param.name] = await supply(self.linker, persona_key)
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
            context=stage.validation_context(ctx),
            priority=priority,
            adjust_schema=(lambda schema: adjust(schema, ctx)) if adjust else None,
            model=model,
        )

    def persona_job(self, key: str, prepared: _Prepared, read: ImageRead) -> PersonaJob:
        """The persona's job: its shared input and the persona inputs its stages declare."""
        options, facts = self.options, read.facts
        draw = reconcile_with_image(
            draw_for_image(options.population, options.seed, prepared.sha256),
            facts.youngest_apparent_age, facts.apparent_gender,
        )
        draw = self.claim_identity(prepared, draw)
        self.draws[prepared.path] = draw
        persona = PersonaInput(
            image_name=prepared.path.name,
            visual_facts=facts.describe(),
            image_data_url=read.data_url,
            hint=_hint(options, prepared.path),
            language=options.language,
            nsfw_level=options.nsfw_level,
        )
        known = _Known(self.settings, facts, draw)
        return PersonaJob(key, persona, prepared.previous, _persona_inputs(known))

    def claim_identity(self, prepared: _Prepared, draw: PersonaDraw) -> PersonaDraw:
        """The persona's name and handle, claimed before stage 1: kept from an earlier run or
        an existing card, else the creator's (hint, then spec), else drawn for its region."""
        options, owner = self.options, persona_key(prepared.card_path)
        fixed = self.fixed_identity(prepared)
        if fixed is not None:
            name, source, handle = fixed
            name, handle = claim_fixed_identity(self.registry, name, owner, source,
                                                f"{options.seed}:{prepared.sha256}", handle)
            return draw.model_copy(update={"name": name, "handle": handle, "name_from": source})
        name, handle = draw_identity(
            draw, options.population, seed=options.seed, image_sha256=prepared.sha256,
            language=options.language, registry=self.registry, owner=owner)
        drawn_from = "population" if options.population.name_weights("name") else "drawn"
        return draw.model_copy(update={"name": name, "handle": handle, "name_from": drawn_from})

    def fixed_identity(self, prepared: _Prepared) -> tuple[str, NameSource, str | None] | None:
        """(name, who fixed it, handle) when the persona's name is not to be drawn."""
        core = prepared.previous.get(IDENTITY_STAGE)
        if isinstance(core, CorePersona):  # resumed: the name stage 1 already wrote
            return core.name, "card", core.handle
        seed = self.options.seeds.get(prepared.path)
        if seed is not None:  # completing an existing card: its character keeps its name
            return seed.card.data.name, "card", None
        hinted = name_in_hint(self.options.hint)
        if hinted:  # the creator named the persona
            return hinted, "hint", None
        fixed = self.options.population.fixes_name()
        return (fixed, "population", None) if fixed else None

    def claim_folder_names(self, exclude: set[Path]) -> None:
        """Names and handles of the folder's other cards are taken (indexed, never prompted).

        Cards this batch (re)writes are excluded, so a rerun draws the same names.
        """
        layout = OutputLayout(self.options.out_dir)
        personas_dir = layout.personas_dir.resolve()
        ours = {path.name for path in exclude if path.parent == personas_dir}
        # Not one of our cards, or an incomplete one: nothing taken (identity_index.py).
        for card, (name, handle) in folder_identities(layout).items():
            if card not in ours:
                self.registry.claim(name, handle, f"folder:{card}")


def _persona_inputs(known: _Known) -> dict[str, Any]:
    """The persona inputs some stage declares (each computed once per persona)."""
    return {name: source(known) for name, source in PERSONA_INPUTS.items()
            if name in _DECLARED_INPUTS}


def _hint(options: PersonaRunOptions, image: Path) -> str | None:
    seed = options.seeds.get(image)
    parts = [part for part in (seed.hint() if seed else None, options.hint) if part]
    return "\n".join(parts) or None


def _card_path(options: PersonaRunOptions, source: SourceImage) -> Path:
    if options.persona_output is not None and len(options.images) == 1:
        return options.persona_output
    return OutputLayout(options.out_dir).card_path(safe_slug(source.stem, fallback="image"))


def _claim_card_path(path: Path, sha256: str, overwrite: bool,
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
    previous = previous_outputs(card, sha256) if card is not None else None
    if previous is not None:
        return path, previous
    if overwrite:
        return path, {}
    return unique_path(path, taken=taken), {}


def _prepare(options: PersonaRunOptions) -> tuple[list[_Prepared], list[PersonaOutcome]]:
    """Check every image before paying for anything; bad ones and duplicates become outcomes.

    Each image is decoded to be checked and then dropped: a batch keeps hashes, not pixels, and
    decodes an image again only when its persona is admitted.
    """
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
                _card_path(options, source), source.sha256, options.overwrite, taken
            )
        taken.add(card_path)
        prepared.append(_Prepared(path, source.sha256, card_path, previous))
    return prepared, rejected


def _outcome(prepared: _Prepared, facts: VisualFacts, results: dict[str, StageResult],
             seconds: float, run: _Run) -> tuple[PersonaOutcome, dict[str, Any] | None]:
    """The persona's outcome, and its card as written (None when it has no card)."""
    outcome = PersonaOutcome(
        prepared.path, "ok", seconds=seconds,
        calls=sum(r.calls for r in results.values()),
        prompt_tokens=sum(r.prompt_tokens for r in results.values()),
        completion_tokens=sum(r.completion_tokens for r in results.values()),
        failed_stages={n: r.error or r.status for n, r in results.items() if r.status != "ok"},
    )
    draw = run.draws.pop(prepared.path, None)  # the run keeps only what is in flight
    missing = [s.name for s in STAGES if s.required and results[s.name].status != "ok"]
    if missing:
        outcome.status = "failed"
        outcome.error = f"stage {missing[0]} failed, no card: {results[missing[0]].error}"
        return outcome, None
    meta = CardMeta(
        source_image=prepared.path.name, source_path=str(prepared.path.resolve()),
        source_sha256=prepared.sha256,
        visual_facts=facts.model_dump(mode="json"), language=run.options.language,
        nsfw_level=run.options.nsfw_level, generated_at=datetime.now(UTC).isoformat(),
        tool_version=__version__, draw=draw.model_dump() if draw else None,
    )
    card = merge_card(results, meta)
    seed = run.options.seeds.get(prepared.path)
    if seed is not None:
        card = overlay_existing(card, seed.card)
    written = card.model_dump(mode="json")
    atomic_write_json(prepared.card_path, written)
    _keep_source_image(prepared, prepared.card_path)
    outcome.card_path = prepared.card_path
    outcome.name = card.data.name
    if outcome.failed_stages:
        outcome.status = "partial"
        outcome.error = "; ".join(f"{n}: {e}" for n, e in outcome.failed_stages.items())
    return outcome, written


def _keep_source_image(source: _Prepared, card_path: Path) -> None:
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


async def _run_personas(
    run: _Run, prepared: list[_Prepared], outcomes: list[PersonaOutcome]
) -> None:
    """Run every persona's DAG, appending each outcome the moment its card is written.

    Personas are admitted one after another, in input order (so identities are claimed in a
    reproducible order), and at most `run.in_flight` at a time: the batch streams through.
    """
    progress = run.progress
    scheduler = Scheduler(STAGES, run.run_stage, progress.stage_event if progress else None)
    slots = asyncio.Semaphore(run.in_flight)
    nsfw_level, sees = run.options.nsfw_level, run.backend.sees_images
    reader = ReadAhead(prepared, lambda item: read_image(item.path, nsfw_level, sees))

    def finish(outcome: PersonaOutcome, key: str) -> None:
        run.keys_to_images.pop(key, None)
        outcomes.append(outcome)
        if progress:
            progress.persona_done(outcome)

    async def build(item: _Prepared, job: PersonaJob, facts: VisualFacts,
                    started: float) -> None:
        try:
            if run.linker is not None:
                for stage in STAGES:
                    if stage.describes_member and stage.name in item.previous:
                        run.linker.core_finished(job.key,
                                                 run.member(job.key, item.previous[stage.name]))
            results = await scheduler.run_persona(job)
            # Off the event loop: a card and its image are two fsyncs (~3 ms each here).
            outcome, card = await asyncio.to_thread(_outcome, item, facts, results,
                                                    time.perf_counter() - started, run)
            if run.linker is not None and card is not None:
                run.linker.card_written(job.key, card)
            finish(outcome, job.key)
        finally:
            slots.release()
            # Every persona counts in the linker exactly once: a persona that never described
            # its member (a failed stage, a bug) counts as none, or its cohort waits forever.
            if run.linker is not None:
                run.linker.core_finished(job.key, None)

    try:
        async with asyncio.TaskGroup() as group:
            while (next_item := reader.next()) is not None:
                item, reading = next_item
                await slots.acquire()
                started, key = time.perf_counter(), persona_key(item.card_path)
                if run.linker is not None:
                    run.linker.join(key)
                try:
                    read = await reading
                    run.keys_to_images[key] = item.path
                    job = run.persona_job(key, item, read)
                except PersonaFoundryError as exc:
                    slots.release()
                    if run.linker is not None:
                        run.linker.core_finished(key, None)
                    finish(PersonaOutcome(item.path, "failed", error=str(exc)), key)
                    continue
                group.create_task(build(item, job, read.facts, started))
    finally:
        reader.cancel()


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
    # What is loaded by now (modules, the face model, Faker's locales) lives as long as the
    # process: out of the collector's sight, or each full collection walks it again while
    # replies wait (~7 % of the event loop's CPU in a 500-persona batch, by py-spy).
    gc.freeze()
    run.claim_folder_names({p.card_path.resolve() for p in prepared})
    if options.link_batch and len(prepared) >= MIN_LINKED_BATCH:
        run.linker = BatchLinker(expected=len(prepared), cohort=run.in_flight // 2)
    if progress:
        progress.started(len(prepared), session.backend.name, session.window_limit)
    fatal: str | None = None
    try:
        # Stage 3's post checks load a language model (~0.8 s, once per process): in a thread
        # while the endpoint is checked, not on the event loop at the first stage 3 reply,
        # with 20 calls out (as `tweets` does).
        await asyncio.gather(session.check(), asyncio.to_thread(warm_up_checks))
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
        outcomes += [PersonaOutcome(p.path, "failed", error=fatal)
                     for p in prepared if p.path not in done]
    return RunSummary(outcomes, time.perf_counter() - started, session.backend.name, fatal,
                      session.pool.budget.spent_usd)

