"""The studio served by uvicorn on a free loopback port, for the browser tests."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from playwright.sync_api import Page

from persona_foundry.settings import Settings
from persona_foundry.studio.app import StudioConfig, create_app
from persona_foundry.studio.security import host_names
from studio_run import StudioRun

START_TIMEOUT_S = 20.0
# The README's screenshots are retaken into docs/ only when asked (PF_UPDATE_SCREENSHOTS=1 make
# test): every run still takes them, but a plain test run leaves the work tree as it was.
README_SCREENSHOTS = Path(__file__).parent.parent / "docs" / "screenshots"
SCREENSHOTS = (README_SCREENSHOTS if os.environ.get("PF_UPDATE_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "persona-foundry-screenshots")


@dataclass(frozen=True)
class LiveStudio:
    """A running studio: its address and the run it serves."""

    url: str
    run: StudioRun


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(run: StudioRun, settings: Settings | None = None) -> Iterator[LiveStudio]:
    """uvicorn serving the studio on `run` in a thread, stopped on exit."""
    port = free_port()
    config = StudioConfig(run.out, settings or Settings(_env_file=None),  # type: ignore[call-arg]
                          host_names("127.0.0.1", port))
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the studio did not start")
        time.sleep(0.05)
    try:
        yield LiveStudio(f"http://127.0.0.1:{port}", run)
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)


def screenshot(page: Page, name: str) -> None:
    """Take the README's screenshot `{name}.png` (into docs/screenshots/ when asked)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 0
