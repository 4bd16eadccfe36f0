"""The same render workers as Ray actors (`num_gpus=1` each) on an existing Ray cluster.

`--ray-address auto` joins the cluster this machine belongs to; no address starts a local Ray
runtime (how the tests run it, on the CPU). The cluster's nodes need this package installed.
"""

from __future__ import annotations

import time
from typing import Any

from .render import ImageJob, RenderSpec
from .worker import EventKind, RenderWorker, WorkerEvent, describe


class RayBackend:
    """Render workers as Ray actors; events come from their finished remote calls."""

    def __init__(self, spec: RenderSpec, address: str | None, workers: int | None) -> None:
        import ray

        self._ray = ray
        self._owns_runtime = not ray.is_initialized()
        if self._owns_runtime:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.on_gpus = gpus > 0
        self.count = workers or max(1, gpus)
        self.device = "cuda" if self.on_gpus else "cpu"
        self.spec = spec
        self._actor_class: Any = ray.remote(RenderWorker)
        self._actors: dict[int, Any] = {}
        self._calls: dict[Any, tuple[int, str]] = {}

    def start(self, worker: int) -> None:
        """Create the actor (a GPU, or a CPU on a cluster without GPUs); ask if it is ready."""
        resources = {"num_gpus": 1, "num_cpus": 0} if self.on_gpus else {"num_cpus": 1}
        actor = self._actor_class.options(max_restarts=0, **resources).remote(
            worker, self.spec, self.device)
        self._actors[worker] = actor
        self._calls[actor.ready.remote()] = (worker, "ready")

    def submit(self, worker: int, job: ImageJob) -> None:
        """Run the job on the worker's actor."""
        self._calls[self._actors[worker].run.remote(job)] = (worker, "run")

    def poll(self, timeout_s: float) -> list[WorkerEvent]:
        """Results of the calls that finished; a dead actor becomes `broken` or `crashed`."""
        if not self._calls:
            time.sleep(timeout_s)
            return []
        done, rest = self._ray.wait(list(self._calls), num_returns=1, timeout=timeout_s)
        if done and rest:  # collect whatever else finished meanwhile, without waiting
            more, _ = self._ray.wait(rest, num_returns=len(rest), timeout=0)
            done += more
        return [self._event(reference) for reference in done]

    def _event(self, reference: Any) -> WorkerEvent:
        worker, call = self._calls.pop(reference)
        try:
            event: WorkerEvent = self._ray.get(reference)
        except self._ray.exceptions.RayError as exc:
            kind: EventKind = "broken" if call == "ready" else "crashed"
            return WorkerEvent(kind, worker, detail=describe(exc))
        return event

    def close(self) -> None:
        """Kill the actors; shut down the runtime if this run started it."""
        for actor in self._actors.values():
            self._ray.kill(actor)
        self._actors.clear()
        if self._owns_runtime:
            self._ray.shutdown()
