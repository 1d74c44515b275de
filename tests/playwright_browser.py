"""A real browser for tests: Debian's chromium driven by Playwright (never a downloaded browser).

Test modules import the fixture `browser` from here. Tests that need it are skipped when
/usr/bin/chromium is missing (`.ci/run` installs it).
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium per test module; each test opens its own context (cookies, auth).

    Not one per session: while Playwright's sync API is open it holds an asyncio loop running
    in the main thread, and other modules' tests that run a loop of their own would fail.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()
