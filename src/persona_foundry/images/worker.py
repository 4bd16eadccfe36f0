"""A render worker: build the pipeline once (from_pretrained), then render the jobs it is handed.

The same `RenderWorker` runs in a spawned process per GPU (`process_main`) and as a Ray actor.
"""

from __future__ import annotations

import os
import queue
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

from .render import ImageJob, Renderer, RenderOutcome, RenderSpec

PARENT_CHECK_S = 5.0
EventKind = Literal["ready", "broken", "started", "finished", "retry", "crashed"]


@dataclass(frozen=True)
class WorkerEvent:
    """What a worker reports to the supervisor."""

    kind: EventKind
    worker: int
    job_id: str | None = None
    outcome: RenderOutcome | None = None
    detail: str = ""
    pid: int | None = None


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA (or CPU allocator) out of memory: the job may fit on another device or later."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def describe(exc: BaseException) -> str:
    """`Type: message` plus the innermost frame, short enough for a report line."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"[:500]


class RenderWorker:
    """A renderer plus the rules for turning a job's exception into an event."""

    def __init__(self, worker: int, spec: RenderSpec, device: str) -> None:
        from .safety import OpenNsfwScorer

        _quiet_libraries()
        self.worker = worker
        scorer = OpenNsfwScorer() if spec.nsfw_check else None
        self.renderer = Renderer(spec, device, scorer)

    def ready(self) -> WorkerEvent:
        """The event saying this worker has its pipeline loaded."""
        return WorkerEvent("ready", self.worker, pid=os.getpid(),
                           detail=f"{type(self.renderer.pipeline).__name__} on "
                                  f"{self.renderer.device}")

    def run(self, job: ImageJob) -> WorkerEvent:
        """Render one job: finished (done, quarantined or failed), or retry elsewhere on OOM."""
        try:
            outcome = self.renderer.render(job)
        except Exception as exc:
            if is_out_of_memory(exc):
                self._free_memory()
                return WorkerEvent("retry", self.worker, job.job_id, detail=describe(exc))
            outcome = RenderOutcome(job.job_id, "failed", error=describe(exc))
        return WorkerEvent("finished", self.worker, job.job_id, outcome)

    @staticmethod
    def _free_memory() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _quiet_libraries() -> None:
    """Workers report through events; the libraries' progress bars and notices are noise there."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def process_main(worker: int, spec: RenderSpec, device: str, inbox: Any,
                 events: Connection) -> None:
    """Entry point of a spawned worker process: load, say ready, render until handed None."""
    try:
        render_worker = RenderWorker(worker, spec, device)
    except Exception as exc:
        events.send(WorkerEvent("broken", worker, detail=describe(exc), pid=os.getpid()))
        return
    events.send(render_worker.ready())
    parent = os.getppid()
    while True:
        try:
            job = inbox.get(timeout=PARENT_CHECK_S)
        except queue.Empty:
            if os.getppid() != parent:  # the run was killed: don't linger as an orphan
                return
            continue
        if job is None:
            return
        events.send(WorkerEvent("started", worker, job.job_id, pid=os.getpid()))
        events.send(render_worker.run(job))
