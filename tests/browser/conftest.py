"""Tests in Debian's chromium (Playwright pointed at /usr/bin/chromium) against a real server."""

from __future__ import annotations

from tests.playwright_browser import browser
from tests.sdk_browser import chromium, running_site
from tests.server_helpers import query, shared_server, url

__all__ = ["browser", "chromium", "query", "running_site", "shared_server", "url"]

