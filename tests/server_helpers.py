"""A real uvicorn server on 127.0.0.1 for the server tests, in a thread of the test process.

Test modules import the `url` and `query` fixtures from here (conftest.py is shared with
the core's tests).
"""

from __future__ import annotations

import base64
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest
import uvicorn

from ledger import IdentityLedger
from ledger.server import create_app

API_KEY = "test-api-key"
SECRET_KEY = "test-secret-key"


@contextmanager
def running_server(ledger: IdentityLedger) -> Iterator[str]:
    """Serve `ledger` on a free port; yields the base URL and stops the server afterwards."""
    app = create_app(ledger, [API_KEY], SECRET_KEY)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]  # port 0: the OS picked a free one
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def basic(user: str, password: str) -> dict[str, str]:
    """An HTTP Basic Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def query_client(url: str, auth: tuple[str, str] = (API_KEY, SECRET_KEY)) -> httpx.Client:
    """An HTTP client for the query API, holding the API key and secret key."""
    return httpx.Client(base_url=url, auth=auth, timeout=10)


@pytest.fixture
def url(lg: IdentityLedger) -> Iterator[str]:
    """The base URL of a server over the test's fresh ledger `lg`."""
    with running_server(lg) as base_url:
        yield base_url


@pytest.fixture
def query(url: str) -> Iterator[httpx.Client]:
    with query_client(url) as client:
        yield client
