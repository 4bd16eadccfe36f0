"""`persona-foundry images` and `portrait`: parse the flags, plan, render, print the summary."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import ConfigurationError, PersonaFoundryError
from ..files import check_writable_dir
from ..nsfw import LevelChoice as ImageNsfwLevel
from .executor import ExecutorOptions
from .jobs import ImagePlan, plan_portraits, plan_tweet_images
from .render import DType, RenderSpec, local_model_source
from .runner import ImageRunSummary, render_plan
from .worker import WorkerEvent

console = Console(stderr=True)
EXIT_USAGE = 2


class ExecutorChoice(StrEnum):
    """--executor values."""

    local = "local"
    ray = "ray"


class DTypeChoice(StrEnum):
    """--dtype values."""

    auto = "auto"
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


ModelOption = Annotated[str, typer.Option(
    help="Pipeline folder (save_pretrained) or a model id already in the local HF cache.")]
OutOption = Annotated[Path | None, typer.Option(
    "--out", "-o", help="Output folder (default: the folder holding tweets/).")]
GpusOption = Annotated[int | None, typer.Option(
    help="Worker processes, one per GPU (default: every visible GPU; CPU: 1).", min=1)]
SingleGpuOption = Annotated[bool, typer.Option(help="One worker on one GPU.")]
ExecutorOption = Annotated[ExecutorChoice, typer.Option(help="local processes or Ray actors.")]
RayAddressOption = Annotated[str | None, typer.Option(help="Ray cluster (`auto`: this one's).")]
StepsOption = Annotated[int | None, typer.Option(help="Steps (default: per model family).",
                                                 min=1)]
GuidanceOption = Annotated[float | None, typer.Option(help="Guidance scale (default: family).")]
WidthOption = Annotated[int | None, typer.Option(help="Width in px (default: family).", min=64)]
HeightOption = Annotated[int | None, typer.Option(help="Height in px (default: family).", min=64)]
DTypeOption = Annotated[DTypeChoice, typer.Option(help="auto: fp16/bf16 on GPU, fp32 on CPU.")]
SchedulerOption = Annotated[str | None, typer.Option(
    help="A compatible diffusers scheduler class, e.g. DPMSolverMultistepScheduler.")]
IpAdapterOption = Annotated[Path | None, typer.Option(
    help="IP-Adapter weight file with image_encoder/ beside it: keeps the reference face.")]
IpScaleOption = Annotated[float, typer.Option(help="How strongly the face reference binds.")]
ReferenceOption = Annotated[Path | None, typer.Option(
    help="Face reference image (default: the persona's source image).")]
SeedOption = Annotated[int, typer.Option(help="Moves every persona's base seed.")]
# --nsfw-level off scores every image and quarantines NSFW ones.
NsfwOption = Annotated[ImageNsfwLevel, typer.Option(
    help="off: NSFW images are re-rendered, then quarantined.")]
ThresholdOption = Annotated[float, typer.Option(help="NSFW score that counts as NSFW.",
                                                min=0.0, max=1.0)]


def _spec(model: str, steps: int | None, guidance: float | None, width: int | None,
          height: int | None, dtype: DTypeChoice, scheduler: str | None,
          ip_adapter: Path | None, ip_adapter_scale: float, nsfw_level: ImageNsfwLevel,
          nsfw_threshold: float) -> RenderSpec:
    local_model_source(model)  # a missing model is reported before any worker starts
    if ip_adapter is not None and not ip_adapter.is_file():
        raise ConfigurationError(f"--ip-adapter {ip_adapter}: not a file (give the weight file, "
                                 "with image_encoder/ beside it)")
    dtype_value: DType = dtype.value
    return RenderSpec(
        model=model, steps=steps, guidance=guidance, width=width, height=height,
        dtype=dtype_value, scheduler=scheduler,
        ip_adapter=str(ip_adapter.resolve()) if ip_adapter else None,
        ip_adapter_scale=ip_adapter_scale, nsfw_check=nsfw_level == ImageNsfwLevel.off,
        nsfw_threshold=nsfw_threshold,
    )


class RichImageProgress:
    """A bar over the images of a run; a log line for every worker crash or failure."""

    def __init__(self, total: int) -> None:
        self._progress = Progress(TextColumn("[bold]images"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                                  console=console)
        self._task = self._progress.add_task("images", total=total, detail="")
        self._ready = 0

    def __enter__(self) -> RichImageProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def __call__(self, event: WorkerEvent) -> None:
        """Follow one worker event."""
        if event.kind == "ready":
            self._ready += 1
            self._progress.update(self._task, detail=f"{self._ready} worker(s) ready")
        elif event.kind == "finished":
            self._progress.update(self._task, advance=1)
            if event.outcome and event.outcome.status != "done":
                console.log(f"[yellow]{escape(event.job_id or '')}: {event.outcome.status}: "
                            f"{escape(event.outcome.error or '')}")
        elif event.kind in ("crashed", "broken", "retry"):
            what = {"crashed": "crashed", "broken": "could not start",
                    "retry": "ran out of memory; job queued again"}[event.kind]
            console.log(f"[red]worker {event.worker} {what}: {escape(event.detail)}")


def _print_summary(summary: ImageRunSummary) -> None:
    for problem in summary.plan.problems:
        console.print(f"[red bold]error:[/] {escape(problem)}")
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    table = Table(title="Persona Foundry images")
    for column in ("image", "status", "seed", "nsfw", "note"):
        table.add_column(column)
    for job_id, outcome in sorted(summary.outcomes.items()):
        table.add_row(escape(outcome.path or job_id), outcome.status, str(outcome.seed or ""),
                      "" if outcome.nsfw_score is None else f"{outcome.nsfw_score:.2f}",
                      escape(outcome.error or ("" if outcome.renders else "made earlier")))
    Console().print(table)
    console.print(f"made {summary.count('done')} ({summary.rendered} rendered now), "
                  f"quarantined {summary.count('quarantined')}, failed {summary.count('failed')}"
                  f"; {summary.elapsed_s:.1f}s on {summary.workers or 'no workers'}")


def _run(make_spec: Callable[[], RenderSpec], make_plan: Callable[[], ImagePlan],
         executor: ExecutorOptions) -> None:
    """Check the flags and inputs (exit 2 on a bad one), render, print, exit 0 or 1."""
    try:
        spec, plan = make_spec(), make_plan()
        check_writable_dir(plan.out_dir)
    except PersonaFoundryError as exc:
        console.print(f"[red bold]error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc
    with RichImageProgress(len(plan.to_render)) as progress:
        summary = render_plan(plan, spec, executor, progress)
    _print_summary(summary)
    raise typer.Exit(summary.exit_code)


def images(
    tweet_files: Annotated[list[Path], typer.Argument(help="Tweet files (out/tweets/*.json).")],
    model: ModelOption, out: OutOption = None, num_gpus: GpusOption = None,
    single_gpu: SingleGpuOption = False, executor: ExecutorOption = ExecutorChoice.local,
    ray_address: RayAddressOption = None, steps: StepsOption = None,
    guidance: GuidanceOption = None, width: WidthOption = None, height: HeightOption = None,
    dtype: DTypeOption = DTypeChoice.auto, scheduler: SchedulerOption = None,
    ip_adapter: IpAdapterOption = None, ip_adapter_scale: IpScaleOption = 0.6,
    reference: ReferenceOption = None, seed: SeedOption = 0,
    nsfw_level: NsfwOption = ImageNsfwLevel.off, nsfw_threshold: ThresholdOption = 0.5,
) -> None:
    """Render the image posts of tweet files: out/images/{persona}/{tweet_id}.png."""
    _run(lambda: _spec(model, steps, guidance, width, height, dtype, scheduler, ip_adapter,
                       ip_adapter_scale, nsfw_level, nsfw_threshold),
         lambda: plan_tweet_images(tweet_files, out, reference, seed,
                                   nsfw_level == ImageNsfwLevel.off),
         ExecutorOptions(executor.value, num_gpus, single_gpu, ray_address))


def portrait(
    card: Annotated[Path, typer.Argument(help="A persona card (ours or imported).")],
    model: ModelOption, count: Annotated[int, typer.Option(help="Shots.", min=1)] = 4,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    num_gpus: GpusOption = None, single_gpu: SingleGpuOption = False,
    executor: ExecutorOption = ExecutorChoice.local, ray_address: RayAddressOption = None,
    steps: StepsOption = None, guidance: GuidanceOption = None, width: WidthOption = None,
    height: HeightOption = None, dtype: DTypeOption = DTypeChoice.auto,
    scheduler: SchedulerOption = None, ip_adapter: IpAdapterOption = None,
    ip_adapter_scale: IpScaleOption = 0.6, reference: ReferenceOption = None,
    seed: SeedOption = 0, nsfw_level: NsfwOption = ImageNsfwLevel.off,
    nsfw_threshold: ThresholdOption = 0.5,
) -> None:
    """Reference shots of a persona: out/images/{persona}/portrait_{n}.png."""
    _run(lambda: _spec(model, steps, guidance, width, height, dtype, scheduler, ip_adapter,
                       ip_adapter_scale, nsfw_level, nsfw_threshold),
         lambda: plan_portraits(card, count, out, reference, seed,
                                nsfw_level == ImageNsfwLevel.off),
         ExecutorOptions(executor.value, num_gpus, single_gpu, ray_address))
