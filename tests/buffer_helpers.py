"""Fixtures for projects and the buffered deployment: two projects, a private stream prefix per test,
two buffered ingest servers. tests/conftest.py registers this module as a plugin, so every test sees them."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from ledger.buffer.stream import BufferConfig, NatsLink
from ledger.server.app import create_app
from ledger.server.projects import ProjectConfig, parse_projects
from ledger.server.registry import open_projects
from tests.server_helpers import running_app

NATS_URL = "nats://127.0.0.1:4222"
WEB_SECRET = "web-secret-of-32-characters-xyz"
APP_SECRET = "app-secret-of-32-characters-xyz"


def projects_toml(web_db: str, app_db: str) -> str:
    return f"""
[projects.web]
api_keys = ["web-key-1"]
secret_key = "{WEB_SECRET}"
db = "{web_db}"

[projects.app]
api_keys = ["app-key-1", "app-key-2"]
secret_key = "{APP_SECRET}"
db = "{app_db}"
"""


@pytest.fixture
def buffer_url() -> Iterator[str]:
    """A buffer URL whose streams belong to this test alone; they are deleted afterwards."""
    prefix = f"T{uuid.uuid4().hex[:12]}"
    yield f"{NATS_URL}?prefix={prefix}"
    with NatsLink(BufferConfig.from_url(NATS_URL)) as link:
        names = link.call(link.js.streams_info(), 10)
        for info in names:
            if info.config.name.startswith(prefix + "_"):
                link.call(link.js.delete_stream(info.config.name), 10)


@pytest.fixture
def link(buffer_url: str) -> Iterator[NatsLink]:
    with NatsLink(BufferConfig.from_url(buffer_url)) as opened:
        yield opened


@pytest.fixture
def configs(new_url: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> list[ProjectConfig]:
    """The projects `web`, on a fresh database of the test's backend, and `app`, on SQLite.

    These tests hold many ledgers open at once (servers, writers), and on PostgreSQL each
    keeps a pool of connections: one project there keeps them within the server's limit.
    """
    app_db = tmp_path_factory.mktemp("app") / "app.db"
    return parse_projects(tomllib.loads(projects_toml(new_url(), f"sqlite:///{app_db}")))


WEB = ("web-key-1", WEB_SECRET)
APP = ("app-key-1", APP_SECRET)


@pytest.fixture
def servers(configs: list[ProjectConfig], buffer_url: str) -> Iterator[list[str]]:
    """Two buffered ingest servers (each with its own NATS connection and database handles)."""
    with ExitStack() as stack:
        urls = []
        for _ in range(2):
            projects = stack.enter_context(open_projects(configs, buffer_url))
            urls.append(stack.enter_context(running_app(create_app(projects))))
        yield urls


def stats(url: str, auth: tuple[str, str]) -> dict:
    reply = httpx.get(f"{url}/v1/stats", auth=auth)
    assert reply.status_code == 200, reply.text
    return reply.json()
