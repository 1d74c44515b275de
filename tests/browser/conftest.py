"""Tests in Debian's chromium (Playwright pointed at /usr/bin/chromium) against a real server.

They run on the main Python only (`main_python_only`): they drive outside programs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.playwright_browser import browser
from tests.sdk_browser import chromium, running_site
from tests.server_helpers import query, shared_server, url

__all__ = ["browser", "chromium", "query", "running_site", "shared_server", "url"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder drives a browser: mark it for the main Python only."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.main_python_only)
