"""`python -m persona_foundry` runs the CLI."""

from .cli import app

app()
