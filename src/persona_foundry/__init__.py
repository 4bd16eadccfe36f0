"""Persona Foundry: character images → AI social-media personas (Character Card V2) and content."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .pipeline import PersonaRunOptions, RunSummary, generate_personas
    from .settings import Settings

# Loaded on first use: importing the package must not import the whole pipeline (~1.4 s), so a
# process that needs one module (the HTTP worker, llm/http_worker.py) starts in a fraction.
_EXPORTS = {"PersonaRunOptions": ".pipeline", "RunSummary": ".pipeline",
            "generate_personas": ".pipeline", "Settings": ".settings"}

__all__ = ["PersonaRunOptions", "RunSummary", "Settings", "__version__", "generate_personas"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
