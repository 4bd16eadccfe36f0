"""The LLM layer: backends (OpenAI-compatible, embedded llama.cpp), the pool, structured calls."""

from __future__ import annotations

from .backends import BACKENDS, BackendKind, backend_kind, build_backend
from .client import ChatBackend, ChatRequest, Completion, OpenAIBackend
from .local import LocalLlamaBackend
from .pool import LLMPool
from .structured import CallTags, StructuredResult, call_structured

__all__ = [
    "BACKENDS",
    "BackendKind",
    "CallTags",
    "ChatBackend",
    "ChatRequest",
    "Completion",
    "LLMPool",
    "LocalLlamaBackend",
    "OpenAIBackend",
    "StructuredResult",
    "backend_kind",
    "build_backend",
    "call_structured",
]
