"""Persona Foundry: character images → AI social-media personas (Character Card V2) and content."""

__version__ = "0.1.0"

from .pipeline import PersonaRunOptions, RunSummary, generate_personas
from .settings import Settings

__all__ = ["PersonaRunOptions", "RunSummary", "Settings", "__version__", "generate_personas"]
