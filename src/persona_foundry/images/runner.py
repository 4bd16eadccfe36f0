"""Render an image plan: what is on disk already counts, the rest goes to the workers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .executor import EventSink, ExecutorOptions, Supervisor, start_backend
from .jobs import ImagePlan, outcome_on_disk, record_outcomes
from .render import RenderOutcome, RenderSpec
from .worker import WorkerEvent


@dataclass
class ImageRunSummary:
    """Outcomes of every image in the plan, and how the run went."""

    plan: ImagePlan
    outcomes: dict[str, RenderOutcome] = field(default_factory=dict)
    rendered: int = 0
    elapsed_s: float = 0.0
    workers: str = ""
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Images with this status (done, quarantined, failed)."""
        return sum(1 for outcome in self.outcomes.values() if outcome.status == status)

    @property
    def exit_code(self) -> int:
        """1 when an image failed or an input could not be used."""
        return 1 if self.count("failed") or self.plan.problems else 0


def render_plan(plan: ImagePlan, spec: RenderSpec, executor: ExecutorOptions,
                on_event: EventSink | None = None) -> ImageRunSummary:
    """Render the plan's missing images and record every outcome in tweet files and calendars."""
    started = time.perf_counter()
    summary = ImageRunSummary(plan)
    # 1. Images earlier runs made (or quarantined) are read back, never rendered again.
    for target in plan.made + plan.quarantined:
        summary.outcomes[target.job.job_id] = outcome_on_disk(target)
    # 2. The rest go to the workers.
    if plan.to_render:
        backend, workers, summary.workers, warning = start_backend(spec, executor)
        summary.warnings += [warning] if warning else []
        sink = on_event or _ignore
        outcomes = Supervisor(backend, workers, sink).run([t.job for t in plan.to_render])
        summary.outcomes.update({outcome.job_id: outcome for outcome in outcomes})
        summary.rendered = sum(1 for outcome in outcomes if outcome.renders)
    # 3. Tweet records and calendar slots learn their image (or why there is none).
    plan.problems += record_outcomes(plan.made + plan.quarantined + plan.to_render,
                                     summary.outcomes)
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _ignore(event: WorkerEvent) -> None:
    del event
