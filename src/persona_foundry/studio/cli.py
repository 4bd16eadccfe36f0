"""`persona-foundry studio`: serve the studio for an output folder (uvicorn, one process)."""

from __future__ import annotations

import secrets
import threading
import webbrowser
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.markup import escape

from ..settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

DEFAULT_PORT = 8765
OPEN_DELAY_S = 1.0
console = Console(stderr=True)


def studio_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token to require, and whether it was generated here (to print it once).

    Off loopback a token is mandatory: anyone on the network could otherwise edit the folder.
    """
    if token:
        return token, False
    if host in LOOPBACK_HOSTS:
        return None, False
    return secrets.token_urlsafe(24), True


def studio_url(host: str, port: int, token: str | None) -> str:
    """The address to open (with the token, which the studio trades for a cookie)."""
    shown = f"[{host}]" if ":" in host else host
    query = f"/?{urlencode({'token': token})}" if token else "/"
    return f"http://{shown}:{port}{query}"


def studio(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("out"),
    host: Annotated[str, typer.Option(help="Address to bind (loopback unless you say so).")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option(help="Port.")] = DEFAULT_PORT,
    token: Annotated[str | None, typer.Option(
        help="Secret every request must carry (generated and printed when binding off "
             "loopback without one).")] = None,
    open_browser: Annotated[bool, typer.Option("--open", help="Open the browser.")] = False,
) -> None:
    """See, fix and approve the folder's personas, calendars and posts in the browser."""
    if not out.is_dir():
        console.print(f"[red bold]error:[/] no output folder at {escape(str(out))}")
        raise typer.Exit(2)
    # The web stack loads only for this command: every other command starts without it.
    import uvicorn  # noqa: PLC0415

    from .app import StudioConfig, create_app  # noqa: PLC0415
    from .security import host_names  # noqa: PLC0415

    required, generated = studio_token(host, token)
    config = StudioConfig(out, Settings(), host_names(host, port), required)
    url = studio_url(host, port, required)
    if generated:
        console.print("[yellow]Not on loopback: every request needs this token (shown once):[/] "
                      f"{escape(required or '')}")
    console.print(f"Studio for {escape(str(out))} at {escape(url)}")
    if open_browser:
        threading.Timer(OPEN_DELAY_S, webbrowser.open, args=(url,)).start()
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
