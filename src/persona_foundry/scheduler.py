"""Runs the stage DAG for many personas at once: a stage starts when its dependencies are done.

There is no barrier between personas or stages; the pool's one limit is the only brake. Slots are
handed out by critical-path priority (longest remaining estimated path first), so stage 1 of a
waiting persona is never starved by the leaf stages of personas already under way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .errors import LLMError, RunStoppedError
from .llm.structured import StructuredResult
from .stages import critical_path_s
from .stages.base import PersonaInput, Stage, StageContext, StageResult

RunStage = Callable[[Stage, StageContext, str, float], Awaitable[StructuredResult[BaseModel]]]
StageEvent = Callable[[str, str, StageResult | None], None]


@dataclass
class PersonaJob:
    """One persona to build: its key (for the ledger), input and outputs kept from earlier runs.

    `inputs` holds the values of the inputs stages declare (`Stage.inputs`) known for this
    persona; each stage's context gets the ones it declares.
    """

    key: str
    persona: PersonaInput
    previous: dict[str, BaseModel] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)


class Scheduler:
    """Runs the declared stages of every persona of a run under one pool."""

    def __init__(
        self, stages: tuple[Stage, ...], run_stage: RunStage,
        on_event: StageEvent | None = None,
    ) -> None:
        self.stages = stages
        self._run_stage = run_stage
        self._on_event = on_event or (lambda kind, persona, result: None)
        # Lower value = served first: the negated critical path through each stage.
        self._priority = {stage.name: -critical_path_s(stages, stage.name) for stage in stages}
        self._clock_origin = time.monotonic()

    async def run_persona(self, job: PersonaJob) -> dict[str, StageResult]:
        """Run all stages of one persona; only a RunStoppedError escapes (it ends the run)."""
        futures: dict[str, asyncio.Future[StageResult]] = {
            stage.name: asyncio.get_running_loop().create_future() for stage in self.stages
        }
        async with asyncio.TaskGroup() as group:
            for stage in self.stages:
                group.create_task(self._run_one(stage, job, futures))
        return {name: future.result() for name, future in futures.items()}

    async def _run_one(
        self, stage: Stage, job: PersonaJob, futures: dict[str, asyncio.Future[StageResult]]
    ) -> None:
        dependencies = [await futures[name] for name in stage.depends_on]
        blocked = [dep.stage for dep in dependencies if dep.status != "ok"]
        if blocked:
            result = StageResult(stage.name, "skipped", error=f"needs {', '.join(blocked)}")
        elif stage.name in job.previous:
            result = StageResult(stage.name, "ok", output=job.previous[stage.name], from_cache=True)
        else:
            ctx = stage.context(job.persona, {dep.stage: dep.output for dep in dependencies
                                              if dep.output is not None}, job.inputs)
            result = await self._call(stage, ctx, job.key)
        futures[stage.name].set_result(result)
        self._on_event(result.status, job.key, result)

    async def _call(self, stage: Stage, ctx: StageContext, persona_key: str) -> StageResult:
        started = self._now()
        self._on_event("start", persona_key, None)
        try:
            done = await self._run_stage(stage, ctx, persona_key, self._priority[stage.name])
        except RunStoppedError:
            raise
        except LLMError as exc:
            return StageResult(
                stage.name, "failed", error=str(exc), started_s=started, finished_s=self._now()
            )
        finally:
            self._on_event("finish", persona_key, None)
        return StageResult(
            stage.name, "ok", output=done.output, from_cache=done.from_cache, calls=done.calls,
            prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens,
            model=done.model, started_s=started, finished_s=self._now(),
        )

    def _now(self) -> float:
        return time.monotonic() - self._clock_origin
