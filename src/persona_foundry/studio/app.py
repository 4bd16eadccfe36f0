"""The studio's web app: the route table, the guard in front of it, the collaborators behind it.

Starlette (not FastAPI): the pages are server-rendered HTML and htmx fragments, so nothing here
needs request-model validation, dependency injection or an OpenAPI schema; forms are parsed by
python-multipart; uvicorn serves it (studio/cli.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..errors import InputError
from ..settings import Settings
from ..store import OutputLayout
from ..textchecks import warm_up_checks
from . import actions, pages
from .context import Studio, template_environment
from .generation import JobBook
from .reading import OutputReader
from .security import Guard, GuardMiddleware

STATIC_DIR = Path(__file__).parent / "static"
ROUTES = [
    Route("/", pages.gallery),
    Route("/persona/{key}", pages.persona_page),
    Route("/persona/{key}/card", actions.card_action, methods=["POST"]),
    Route("/persona/{key}/retry", actions.retry_action, methods=["POST"]),
    Route("/persona/{key}/export/{fmt}", pages.export_download),
    Route("/calendar", pages.calendar_page),
    Route("/slots/bulk", actions.bulk_action, methods=["POST"]),
    Route("/slots/move", actions.move_action, methods=["POST"]),
    Route("/post/{key}/{month}/{slot}", pages.post_page),
    Route("/post/{key}/{month}/{slot}/check", actions.check_action, methods=["POST"]),
    Route("/post/{key}/{month}/{slot}/regenerate", actions.regenerate_action, methods=["POST"]),
    Route("/post/{key}/{month}/{slot}/{action}", actions.post_action, methods=["POST"]),
    Route("/generate", pages.generate_page),
    Route("/generate", actions.generate_action, methods=["POST"]),
    Route("/jobs/{job}", pages.job_page),
    Route("/usage", pages.usage_page),
    Route("/quality", pages.quality_page),
    Route("/files/{path:path}", pages.output_file),
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
]


@dataclass(frozen=True)
class StudioConfig:
    """What the studio serves and to whom."""

    out_dir: Path
    settings: Settings
    hosts: frozenset[str] | None  # Host header values answered (None: any; security.py)
    token: str | None = None


def create_app(config: StudioConfig) -> Starlette:
    """The studio for one output folder."""
    layout = OutputLayout(config.out_dir)
    guard = Guard(config.hosts, config.token)
    studio = Studio(layout, OutputReader(layout), config.settings, guard,
                    JobBook(config.settings, config.out_dir),
                    Jinja2Templates(env=template_environment()))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The language model of the post checks loads in a thread: the first editor opened
        # does not wait ~1 s for it.
        warm = asyncio.create_task(asyncio.to_thread(warm_up_checks))
        yield
        await warm

    app = Starlette(routes=ROUTES, middleware=[Middleware(GuardMiddleware, guard=guard)],
                    exception_handlers={InputError: _unreadable}, lifespan=lifespan)
    app.state.studio = studio
    return app


async def _unreadable(request: Request, exc: Exception) -> Response:
    return pages.read_problem(request, exc)
