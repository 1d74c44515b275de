"""A real browser for tests: Debian's chromium driven by Playwright (never a downloaded browser).

`launched_chromium` starts it, with any extra command-line flags; the fixture `browser` is one
headless chromium per test module. A missing chromium fails the tests with the command that
fixes it (`.ci/run` installs it): browser tests are never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def launched_chromium(*extra_args: str) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, *extra_args])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless chromium per test module; each test opens its own context (cookies, auth).

    Not one per session: while Playwright's sync API is open it holds an asyncio loop running
    in the main thread, and other modules' tests that run a loop of their own would fail.
    """
    with launched_chromium() as launched:
        yield launched
