"""A real uvicorn server on 127.0.0.1 for the server tests, in a thread of the test process.

Test modules import the fixtures `shared_server`, `url`, `http` and `query` from here
(conftest.py is shared with the core's tests). One server serves a whole module, each test's requests
going to that test's fresh ledger: stopping uvicorn takes 0.2 s, too long to pay per test.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from ledger import IdentityLedger
from ledger.server.app import create_app

API_KEY = "test-api-key"
SECRET_KEY = "test-secret-key-of-the-suite"


@contextmanager
def running_app(app: Starlette, **options: Any) -> Iterator[str]:
    """Serve `app` on a free port (`options` go to uvicorn.Config); yields the base URL and stops the server afterwards."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                           **options))
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


class CurrentLedger:
    """Stands in for the ledger of the test that is running."""

    ledger: IdentityLedger | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)


@dataclass
class SharedServer:
    url: str
    current: CurrentLedger
    http: httpx.Client  # no credentials
    query: httpx.Client  # an API key and the secret key


@pytest.fixture(scope="module")
def shared_server() -> Iterator[SharedServer]:
    """One server per module, and clients kept alive across its tests (a new httpx client costs 0.1 s)."""
    current = CurrentLedger()
    app = create_app(current, [API_KEY], SECRET_KEY)  # type: ignore[arg-type]
    with running_app(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http, \
            query_client(base_url) as query:
        yield SharedServer(base_url, current, http, query)


@pytest.fixture
def url(shared_server: SharedServer, lg: IdentityLedger) -> Iterator[str]:
    """The base URL of a server over the test's fresh ledger `lg`."""
    shared_server.current.ledger = lg
    yield shared_server.url
    shared_server.current.ledger = None


@pytest.fixture
def http(shared_server: SharedServer, url: str) -> httpx.Client:
    """A client of the test's server without credentials."""
    return shared_server.http


@pytest.fixture
def query(shared_server: SharedServer, url: str) -> httpx.Client:
    """A client of the test's server holding the API key and the secret key."""
    return shared_server.query


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll `condition` until it holds; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
