"""The LLM layer: backends (OpenAI-compatible, embedded llama.cpp), the pool, structured calls."""

from __future__ import annotations

from ..settings import Settings
from .client import ChatBackend, ChatRequest, Completion, OpenAIBackend
from .local import LocalLlamaBackend
from .model_store import resolve_model_path
from .pool import LLMPool
from .structured import CallTags, StructuredResult, call_structured

__all__ = [
    "CallTags",
    "ChatBackend",
    "ChatRequest",
    "Completion",
    "LLMPool",
    "LocalLlamaBackend",
    "OpenAIBackend",
    "StructuredResult",
    "build_backend",
    "call_structured",
]


def build_backend(settings: Settings) -> ChatBackend:
    """The configured endpoint, or the embedded model when no endpoint is set."""
    if not settings.uses_embedded_model and settings.llm_base_url:
        api_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return OpenAIBackend(
            base_url=settings.llm_base_url,
            api_key=api_key,
            timeout_s=settings.request_timeout_s,
            sees_images=settings.llm_multimodal or settings.llm_vision_model is not None,
        )
    model_path = resolve_model_path(settings.local_model_path, settings.cache_dir)
    return LocalLlamaBackend(
        model_path, n_ctx=settings.local_context, n_threads=settings.local_threads,
        n_parallel=settings.local_parallel, log_dir=settings.cache_dir / "logs",
    )
