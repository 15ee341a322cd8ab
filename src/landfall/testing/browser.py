"""Debian's chromium driven by Playwright, for the dashboard tests: headless, no sandbox, a fresh profile, and no
browser download (Playwright is pointed at the system binary, which `.ci/run` installs with apt)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = os.environ.get("LANDFALL_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no chromium at `{CHROMIUM}` (apt-get install chromium, or set LANDFALL_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'no playwright (pip install ".[test]")'
    return None


@contextmanager
def browser_page(*, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A Playwright page in a fresh headless chromium; page errors are collected in `page.errors`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.errors = []  # type: ignore[attr-defined]
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))  # type: ignore[attr-defined]
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()
