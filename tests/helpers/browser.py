"""Playwright on Debian's chromium for the slow browser tests: where chromium is, where screenshots go (the CI
artifact folder the README names), and a page that fails its test on uncaught page errors."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from loadtest.servers import REPO

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = REPO / "build" / "test-artifacts" / "playground"


@contextlib.contextmanager
def watched_page(browser, test_name: str, **context_options):
    """A fresh page at 1000x1000; after the test, a full-page screenshot `<test_name>.png` under ARTIFACTS, and
    the test fails if the page raised an uncaught error."""
    context = browser.new_context(viewport={"width": 1000, "height": 1000}, **context_options)
    tab = context.new_page()
    problems = []
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=ARTIFACTS / f"{test_name}.png", full_page=True)
    context.close()
    assert not problems, f"uncaught errors in the page: {problems}"
