"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's own browser download (`playwright install`) never runs: it fails offline, and
Debian's package is what .ci/run installs. Every page gets a fresh profile directory, so no
state leaks between tests. Usage: `with chromium_page(tmp_path) as page: page.goto(url)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run")


@contextmanager
def chromium_page(profile_root: Path) -> Iterator[Page]:
    """A page of a headless Chromium with a fresh profile under `profile_root`."""
    profile = profile_root / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True,
            args=list(CHROMIUM_ARGS),  # the profile is passed as user_data_dir, as Playwright asks
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()
