"""Fixtures of the browser tests: the studio live on this test's copy of the run, a page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from browser import chromium_page
from studio_live import LiveStudio, serving
from studio_run import StudioRun, studio_copy, studio_source

__all__ = ["studio_copy", "studio_source"]  # fixtures, used by name


@pytest.fixture
def live_studio(studio_copy: StudioRun) -> Iterator[LiveStudio]:
    """The studio serving this test's copy of the run."""
    with serving(studio_copy) as live:
        yield live


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A headless Chromium page (Debian's chromium, a fresh profile)."""
    with chromium_page(tmp_path) as opened:
        opened.set_viewport_size({"width": 1280, "height": 900})
        yield opened
