"""Fixtures for the buffered deployment: a private stream prefix per test on the local NATS server."""

from __future__ import annotations

import tomllib
import uuid
from typing import Callable, Iterator

import pytest

from ledger.buffer.stream import BufferConfig, NatsLink
from ledger.server.projects import ProjectConfig, parse_projects
from tests.test_projects import projects_toml

NATS_URL = "nats://127.0.0.1:4222"


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
def configs(new_url: Callable[[], str]) -> list[ProjectConfig]:
    """The projects `web` and `app`, each on a fresh database of the test's backend."""
    return parse_projects(tomllib.loads(projects_toml(new_url(), new_url())))
