"""Run image jobs on a pool of workers: one per GPU (local processes) or Ray actors.

One supervisor loop serves both backends. Workers pull: a worker is handed its next job only when
it reports the last one, so a slow GPU never holds the others back. A worker that crashes (or a
job that runs out of memory) is reported, the job goes back to the queue for another worker, and
a crashed worker is restarted a bounded number of times; the run always finishes.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import Any, Literal, Protocol

from .render import ImageJob, RenderOutcome, RenderSpec
from .worker import WorkerEvent, process_main

MAX_JOB_ATTEMPTS = 3  # a job lost to crashes/OOM this often is failed, not retried forever
MAX_WORKER_RESTARTS = 2
POLL_S = 0.2
WorkerState = Literal["starting", "idle", "busy", "dead"]
EventSink = Callable[[WorkerEvent], None]


@dataclass
class JobBook:
    """Pending jobs, attempts, and one outcome per job (later duplicates are ignored)."""

    jobs: list[ImageJob]
    pending: deque[ImageJob] = field(init=False)
    outcomes: dict[str, RenderOutcome] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    avoid: dict[str, set[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pending = deque(self.jobs)

    def take(self, worker: int, others_alive: bool) -> ImageJob | None:
        """The next job for this worker; one it lost is left for another worker while any lives."""
        for job in self.pending:
            if worker not in self.avoid.get(job.job_id, set()) or not others_alive:
                self.pending.remove(job)
                self.attempts[job.job_id] = self.attempts.get(job.job_id, 0) + 1
                return job
        return None

    def lost(self, job: ImageJob, worker: int, reason: str) -> None:
        """A worker died on (or ran out of memory with) this job: queue it again, or fail it."""
        if job.job_id in self.outcomes:
            return
        attempts = self.attempts.get(job.job_id, 1)
        if attempts >= MAX_JOB_ATTEMPTS:
            self.record(RenderOutcome(job.job_id, "failed", error=reason, attempts=attempts))
            return
        self.avoid.setdefault(job.job_id, set()).add(worker)
        self.pending.appendleft(job)

    def record(self, outcome: RenderOutcome) -> bool:
        """Keep the first outcome of a job; say whether this one was new."""
        if outcome.job_id in self.outcomes:
            return False
        attempts = self.attempts.get(outcome.job_id, 1)
        self.outcomes[outcome.job_id] = replace(outcome, attempts=attempts)
        self.pending = deque(job for job in self.pending if job.job_id != outcome.job_id)
        return True

    def fail_pending(self, reason: str) -> None:
        """No worker is left: every job still waiting fails with the reason."""
        while self.pending:
            job = self.pending.popleft()
            self.record(RenderOutcome(job.job_id, "failed", error=reason))

    @property
    def finished(self) -> bool:
        """Every job has an outcome."""
        return len(self.outcomes) == len({job.job_id for job in self.jobs})


class WorkerBackend(Protocol):
    """Where workers live: spawned processes or Ray actors."""

    def start(self, worker: int) -> None:
        """Start (or restart) worker `worker`; it reports `ready` or `broken`."""

    def submit(self, worker: int, job: ImageJob) -> None:
        """Hand one job to an idle worker."""

    def poll(self, timeout_s: float) -> list[WorkerEvent]:
        """Events since the last poll, `crashed` ones included."""
        ...

    def close(self) -> None:
        """Stop every worker."""


@dataclass
class _Worker:
    state: WorkerState = "starting"
    job: ImageJob | None = None
    restarts: int = 0


class Supervisor:
    """Hands jobs to idle workers and keeps the books until every job has an outcome."""

    def __init__(self, backend: WorkerBackend, workers: int, on_event: EventSink) -> None:
        self.backend, self.on_event = backend, on_event
        self.workers = {index: _Worker() for index in range(workers)}

    def run(self, jobs: list[ImageJob]) -> list[RenderOutcome]:
        """Render every job; outcomes in job order."""
        book = JobBook(jobs)
        if not jobs:
            return []
        for index in self.workers:
            self.backend.start(index)
        try:
            while not book.finished:
                self._dispatch(book)
                for event in self.backend.poll(POLL_S):
                    self._handle(event, book)
                if all(worker.state == "dead" for worker in self.workers.values()):
                    book.fail_pending("no worker left to render (see the worker errors above)")
        finally:
            self.backend.close()
        return [book.outcomes[job.job_id] for job in jobs]

    def _dispatch(self, book: JobBook) -> None:
        for index, worker in self.workers.items():
            if worker.state != "idle":
                continue
            others = any(w.state in ("idle", "busy", "starting")
                         for i, w in self.workers.items() if i != index)
            job = book.take(index, others)
            if job is not None:
                worker.state, worker.job = "busy", job
                self.backend.submit(index, job)

    def _handle(self, event: WorkerEvent, book: JobBook) -> None:
        worker = self.workers[event.worker]
        if event.kind == "ready":
            worker.state = "idle"
        elif event.kind == "broken":
            worker.state = "dead"
        elif event.kind in ("finished", "retry") and worker.job is not None:
            if event.kind == "retry":
                book.lost(worker.job, event.worker, f"out of memory: {event.detail}")
            elif event.outcome is not None:
                book.record(event.outcome)
            worker.state, worker.job = "idle", None
        elif event.kind == "crashed" and worker.state != "dead":  # not a broken one's exit
            self._crashed(event, worker, book)
        self.on_event(event)

    def _crashed(self, event: WorkerEvent, worker: _Worker, book: JobBook) -> None:
        if worker.job is not None:
            book.lost(worker.job, event.worker, f"worker {event.worker} crashed: {event.detail}")
        worker.job = None
        if worker.restarts < MAX_WORKER_RESTARTS:
            worker.state, worker.restarts = "starting", worker.restarts + 1
            self.backend.start(event.worker)
        else:
            worker.state = "dead"


class ProcessBackend:
    """One spawned process per device, each with its own inbox and its own event pipe.

    Not one event queue shared by all: a worker killed while it held the queue's write lock
    (SIGKILL, the OOM killer) would leave every other worker blocked on its next event.
    """

    def __init__(self, spec: RenderSpec, devices: list[str]) -> None:
        self.spec, self.devices = spec, devices
        self._context = multiprocessing.get_context("spawn")
        self._events: dict[int, Connection] = {}
        self._inboxes: dict[int, Any] = {}
        self._processes: dict[int, Any] = {}

    def start(self, worker: int) -> None:
        """Spawn the worker's process (a fresh inbox and pipe each time: a dead one may hold a
        job or half an event)."""
        inbox = self._context.Queue()
        events, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=process_main, name=f"persona-foundry-render-{worker}", daemon=True,
            args=(worker, self.spec, self.devices[worker], inbox, sender))
        process.start()
        sender.close()  # the worker's end only: its death then reads as end of file here
        old = self._events.pop(worker, None)
        if old is not None:  # a dead worker's pipe not yet read to its end
            old.close()
        self._inboxes[worker], self._processes[worker] = inbox, process
        self._events[worker] = events

    def submit(self, worker: int, job: ImageJob) -> None:
        """Put the job in the worker's inbox."""
        self._inboxes[worker].put(job)

    def poll(self, timeout_s: float) -> list[WorkerEvent]:
        """Events sent so far, then a `crashed` event for each process that died without notice."""
        ready = wait(list(self._events.values()), timeout_s)
        events = [event for worker, pipe in list(self._events.items()) if pipe in ready
                  for event in self._drain(worker)]
        for worker, process in list(self._processes.items()):
            if process.exitcode is not None:
                events += self._drain(worker)  # what it said before dying comes first
                del self._processes[worker]
                events.append(WorkerEvent("crashed", worker, detail=_exit_reason(process)))
        return events

    def _drain(self, worker: int) -> list[WorkerEvent]:
        events: list[WorkerEvent] = []
        pipe = self._events.get(worker)
        if pipe is None:
            return events
        try:
            while pipe.poll():
                events.append(pipe.recv())
        except (EOFError, OSError, pickle.UnpicklingError):  # gone, maybe mid-event
            pipe.close()
            del self._events[worker]
        return events

    def close(self) -> None:
        """Ask every worker to stop, then make sure it did."""
        for worker, process in self._processes.items():
            if process.is_alive():
                self._inboxes[worker].put(None)
        for process in self._processes.values():
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self._events.values():
            pipe.close()


def _exit_reason(process: Any) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        return f"killed by signal {-code}"
    return f"exited with code {code}"


ExecutorKind = Literal["local", "ray"]


@dataclass(frozen=True)
class ExecutorOptions:
    """Where the workers run and how many."""

    kind: ExecutorKind = "local"
    num_gpus: int | None = None
    single_gpu: bool = False
    ray_address: str | None = None


def plan_devices(num_gpus: int | None, single_gpu: bool) -> tuple[list[str], str | None]:
    """One device per worker (`cuda:i`), or CPU workers with a warning when no GPU is visible."""
    import torch

    visible = torch.cuda.device_count()
    wanted = 1 if single_gpu else num_gpus
    if visible == 0:
        workers = wanted or 1
        return ["cpu"] * workers, (f"no GPU visible: rendering on the CPU with {workers} "
                                   "worker(s); a full-size model takes minutes per image")
    warning = None
    if wanted and wanted > visible:
        warning = f"--num-gpus {wanted} but {visible} GPU(s) visible: using {visible}"
    return [f"cuda:{index}" for index in range(min(wanted or visible, visible))], warning


def cpu_threads_per_worker(workers: int) -> int:
    """Split the cores: torch threads fighting over shared cores run slower than one each."""
    return max(1, (os.cpu_count() or 1) // workers)


def start_backend(spec: RenderSpec, options: ExecutorOptions) -> tuple[WorkerBackend, int, str,
                                                                       str | None]:
    """The backend, its worker count, a description, and a warning worth showing (if any)."""
    if options.kind == "ray":
        from .ray_backend import RayBackend

        ray_backend = RayBackend(spec, options.ray_address, options.num_gpus)
        where = "GPU" if ray_backend.on_gpus else "CPU"
        warning = None if ray_backend.on_gpus else "the Ray cluster has no GPU: actors use CPUs"
        return ray_backend, ray_backend.count, f"{ray_backend.count} Ray actor(s) on {where}", \
            warning
    devices, warning = plan_devices(options.num_gpus, options.single_gpu)
    if devices[0] == "cpu" and spec.threads is None:
        spec = replace(spec, threads=cpu_threads_per_worker(len(devices)))
    return ProcessBackend(spec, devices), len(devices), \
        f"{len(devices)} worker process(es) on {', '.join(sorted(set(devices)))}", warning
