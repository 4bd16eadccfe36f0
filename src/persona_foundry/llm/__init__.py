"""The LLM layer: backends (OpenAI-compatible, embedded llama.cpp), the pool, structured calls."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backends import BACKENDS, BackendKind, backend_kind, build_backend
    from .client import ChatBackend, ChatRequest, Completion, OpenAIBackend
    from .local import LocalLlamaBackend
    from .pool import LLMPool
    from .structured import CallTags, StructuredResult, call_structured

# Loaded on first use, like the package's own exports: the HTTP worker imports client.py alone.
_EXPORTS = {
    "BACKENDS": ".backends", "BackendKind": ".backends", "backend_kind": ".backends",
    "build_backend": ".backends", "ChatBackend": ".client", "ChatRequest": ".client",
    "Completion": ".client", "OpenAIBackend": ".client", "LocalLlamaBackend": ".local",
    "LLMPool": ".pool", "CallTags": ".structured", "StructuredResult": ".structured",
    "call_structured": ".structured",
}

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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
