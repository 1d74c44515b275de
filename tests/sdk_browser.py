"""The real Amplitude and Segment SDKs in Debian's chromium, and in node, for tests/browser/test_sdk_browser.py.

The SDKs come from the npm registry at the versions pinned in tests/browser_sdks/package-lock.json
(`npm ci --prefix tests/browser_sdks`, which .ci/run does). A missing install or browser fails the
tests with the command that fixes it: they are never skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from tests.playwright_browser import launched_chromium
from tests.server_helpers import running_app

SDKS = Path(__file__).parent / "browser_sdks"
MODULES = SDKS / "node_modules"
LOOPBACK = {"127.0.0.1", "localhost"}
#: Only this machine resolves. Not Playwright's request routing: it answers CORS preflights
#: itself, and the preflights are what these tests are about.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND, " + ", ".join(f"EXCLUDE {host}" for host in LOOPBACK)


def require_sdks() -> None:
    if not (MODULES / "@amplitude" / "analytics-browser").is_dir():
        pytest.fail(f"the SDK fixtures are not installed: run `npm ci --prefix {SDKS}` (as .ci/run does)")


def site_app() -> Starlette:
    """A web site serving site.html and the SDK bundles; Segment's lazily loaded chunks where its CDN has them."""
    require_sdks()
    return Starlette(routes=[
        Mount("/analytics-next/bundles", StaticFiles(directory=MODULES / "@segment/analytics-next/dist/umd")),
        Mount("/", StaticFiles(directory=SDKS)),
    ])


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node is not installed: the Node SDK tests need it (apt-get install nodejs npm, as .ci/run does)")
    return found


@pytest.fixture(scope="module")
def running_site() -> Iterator[str]:
    """The base URL of the shop's web site, on 127.0.0.1."""
    with running_app(site_app()) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Debian chromium for the module that reaches no host but this one."""
    with launched_chromium(LOOPBACK_ONLY) as browser:
        yield browser
