"""The embedded backend: llama.cpp in-process, behind the same ChatBackend protocol.

In-process rather than `python -m llama_cpp.server`: that server serialises requests anyway and
rejects `response_format: json_schema`, while in-process `create_chat_completion` accepts a
schema and constrains decoding with a grammar built from it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from ..errors import ModelSetupError
from .client import BackendError, ChatRequest, Completion

# One CPU decode stream at a time: a second one only halves the speed of each.
LOCAL_MAX_PARALLEL = 1


def _text_only(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop image parts: the local model cannot see, and its chat template wants strings."""
    flat = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            text = "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
            flat.append({**message, "content": text})
        else:
            flat.append(message)
    return flat


class LocalLlamaBackend:
    """A GGUF model run by llama-cpp-python on this machine's CPU."""

    max_parallel: int | None = LOCAL_MAX_PARALLEL
    sees_images = False

    def __init__(self, model_path: Path, *, n_ctx: int, n_threads: int | None = None) -> None:
        self.model_path = model_path
        self.name = f"local:{model_path.name}"
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._llama: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        if self._llama is None:
            # Imported here: loading llama.cpp costs time no HTTP-only run should pay.
            from llama_cpp import Llama  # noqa: PLC0415

            try:
                self._llama = Llama(
                    model_path=str(self.model_path), n_ctx=self._n_ctx,
                    n_threads=self._n_threads, verbose=False,
                )
            except (ValueError, RuntimeError) as exc:
                raise BackendError(f"cannot load {self.model_path}: {exc}", kind="local") from exc
        return self._llama

    def _generate(self, request: ChatRequest) -> dict[str, Any]:
        llama = self._load()
        try:
            result: dict[str, Any] = llama.create_chat_completion(
                messages=_text_only(request.messages),
                response_format={"type": "json_object", "schema": request.json_schema},
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                seed=request.seed,
            )
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"local model failed: {exc}", kind="local") from exc
        return result

    async def complete(self, request: ChatRequest) -> Completion:
        """Generate in a worker thread so the event loop (progress, other I/O) stays live."""
        async with self._lock:
            started = time.perf_counter()
            result = await asyncio.to_thread(self._generate, request)
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            latency_s=time.perf_counter() - started,
            finish_reason=choice.get("finish_reason"),
        )

    async def check(self) -> None:
        """Load the model now, so a broken file fails before any persona starts."""
        async with self._lock:
            try:
                await asyncio.to_thread(self._load)
            except BackendError as exc:
                raise ModelSetupError(str(exc)) from exc

    async def aclose(self) -> None:
        """Free the model's memory."""
        if self._llama is not None:
            self._llama.close()
            self._llama = None
