"""One command's LLM plumbing: backend, the shared pool, the ledger, the run id, model routing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ..costs import BudgetGuard
from ..errors import RunStoppedError
from ..ledger import Ledger, open_ledger
from ..settings import Settings
from ..store.layout import OutputLayout
from .backends import backend_kind, build_backend
from .client import ChatBackend, ChatRequest
from .pool import LLMPool
from .sampling import sampling_for
from .structured import (
    CallTags,
    StructuredResult,
    call_structured,
    json_schema_for,
    max_output_tokens,
)

OutputT = TypeVar("OutputT", bound=BaseModel)
SchemaAdjust = Callable[[dict[str, Any]], dict[str, Any]]


class LLMSession:
    """Every structured call of one command goes through here, under one pool and one ledger."""

    def __init__(self, settings: Settings, backend: ChatBackend, ledger: Ledger) -> None:
        self.settings = settings
        self.backend = backend
        self.ledger = ledger
        self.run_id = uuid.uuid4().hex[:12]
        self.pool = LLMPool(
            backend, max_concurrent=settings.max_concurrent, max_attempts=settings.max_attempts,
            budget=BudgetGuard(settings.budget_usd, settings.price_table()),
            rpm=settings.rpm, tpm=settings.tpm,
        )

    @classmethod
    def open(cls, settings: Settings, out_dir: Path,
             backend: ChatBackend | None = None) -> LLMSession:
        """A session over the configured (or given) backend and `out_dir/ledger.db`."""
        ledger = open_ledger(OutputLayout(out_dir).ledger_path)
        return cls(settings, backend or build_backend(settings), ledger)

    def window_limit(self) -> int | None:
        """Calls the adaptive window lets into flight now (None for the embedded model)."""
        return self.pool.window.limit if self.pool.window else None

    def concurrency_window(self) -> int:
        """Calls the pool lets into flight now (what a dispatcher plans its rounds on)."""
        return self.pool.send_limit

    async def check(self) -> None:
        """Fail fast (EndpointError) if the backend cannot serve this run at all."""
        await self.pool.check()

    async def aclose(self) -> None:
        """Close the ledger and the backend."""
        self.ledger.close()
        await self.pool.aclose()

    async def __aenter__(self) -> LLMSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def model_for(self, stage: str, *, uses_vision_model: bool = False) -> str:
        """The model a stage's calls use (the embedded model serves every stage)."""
        settings = self.settings
        if not backend_kind(settings).routes_models:
            return self.backend.name
        vision = settings.llm_vision_model
        if uses_vision_model and vision and stage not in settings.stage_models:
            return vision
        return settings.model_for(stage)

    def model_sees_images(self, model: str) -> bool:
        """Whether `model` accepts images: the vision model, or any model with LLM_MULTIMODAL."""
        if not self.backend.sees_images:
            return False
        return self.settings.llm_multimodal or model == self.settings.llm_vision_model

    async def call(
        self, output_model: type[OutputT], messages: list[dict[str, Any]], *, stage: str,
        persona: str, context: dict[str, Any] | None = None, priority: float = 0.0,
        adjust_schema: SchemaAdjust | None = None, model: str | None = None,
        own_pacing: bool = False,
    ) -> StructuredResult[OutputT]:
        """One validated structured call, cached by its fingerprint and logged in the ledger.

        `model` overrides the stage's routed model (`model_for`). `own_pacing`: the caller
        schedules the CPU work around its calls itself (the posts dispatcher hands a freed slot
        on and judges the replies when no other comes in), so the call takes no CPU turns
        (llm/pool.py: CpuTurns); they would only delay its return, and with it the handover.
        """
        schema = json_schema_for(output_model)
        if adjust_schema is not None:
            schema = adjust_schema(schema)
        sampling = sampling_for(stage)
        temperature = self.settings.temperature if sampling.temperature is None else (
            sampling.temperature)
        request = ChatRequest(
            model=model or self.model_for(stage), messages=messages,
            schema_name=stage, json_schema=schema, temperature=temperature,
            max_tokens=max_output_tokens(schema), seed=self.settings.seed,
            penalties=sampling.penalties,
        )
        return await call_structured(
            output_model, request, pool=self.pool, ledger=self.ledger,
            tags=CallTags(self.run_id, persona, stage), max_reasks=self.settings.max_reasks,
            context=context, priority=priority,
            turns=None if own_pacing else self.pool.cpu_turns,
        )


def endpoint_error_message(group: BaseExceptionGroup[Exception]) -> str:
    """The message of the RunStoppedError that ended a run; re-raise anything else."""
    matched, rest = group.split(RunStoppedError)
    if rest is not None or matched is None:
        raise group
    first: BaseException = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return str(first)
