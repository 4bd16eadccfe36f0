"""Browser tests: the studio in headless Chromium (a package, so its conftest is e2e.conftest)."""
