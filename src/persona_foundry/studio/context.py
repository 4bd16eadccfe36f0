"""The studio's collaborators (output folder, reader, settings, guard, jobs, templates), built
once by `create_app` and handed to every route through `request.app.state.studio`."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jinja2 import ChainableUndefined, Environment, PackageLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from ..settings import Settings
from ..store import OutputLayout
from .charts import PILLAR_COLOURS
from .generation import JobBook
from .reading import OutputReader
from .security import Guard

SAFE_LINK_SCHEMES = ("https://", "http://")


def _pillar_class(pillar: str) -> str:
    return f"pillar-{zlib.crc32(pillar.encode('utf-8')) % PILLAR_COLOURS}"


def _safe_link(url: object) -> str | None:
    """A link a model or platform gave, only when it is plain http(s) (never `javascript:`)."""
    text = str(url or "")
    return text if text.lower().startswith(SAFE_LINK_SCHEMES) else None


def _short(text: object, limit: int = 90) -> str:
    value = str(text or "")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def template_environment() -> Environment:
    """Jinja2 with autoescaping on for every template: model and user text is data, never
    markup (no template marks any of it `|safe`)."""
    environment = Environment(loader=PackageLoader("persona_foundry.studio", "templates"),
                              autoescape=True, undefined=ChainableUndefined, auto_reload=False,
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(pillar_class=_pillar_class, safe_link=_safe_link, short=_short,
                               q=lambda value: quote(str(value), safe=""))
    return environment


@dataclass
class Studio:
    """Everything a route needs."""

    layout: OutputLayout
    reader: OutputReader
    settings: Settings
    guard: Guard
    jobs: JobBook
    templates: Jinja2Templates

    def page(self, request: Request, name: str, status: int = 200,
             **context: Any) -> HTMLResponse:
        """Render a template with the values every page uses."""
        return self.templates.TemplateResponse(
            request, name, {"csrf": self.guard.csrf, "htmx": is_htmx(request), **context},
            status_code=status)


def studio_of(request: Request) -> Studio:
    """The Studio the app was built with."""
    studio: Studio = request.app.state.studio
    return studio


def is_htmx(request: Request) -> bool:
    """The request came from htmx (answer with a fragment, not a whole page)."""
    return request.headers.get("hx-request") == "true"
