"""A past read whose client hangs up stops replaying and deletes its scratch copy (query API and explorer)."""

from __future__ import annotations

import base64
import socket
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from ledger import IdentityLedger
from ledger.server.app import create_app
from ledger.store import scratch
from projections.runner import ProjectionRunner
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY, running_app

AUTH = base64.b64encode(f"{API_KEY}:{SECRET_KEY}".encode()).decode()


@pytest.fixture
def slow_replays(lg: IdentityLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A log whose replay takes pages of 5 facts, each read in 0.1 s (tens of seconds in all); the pages read."""
    monkeypatch.setenv(scratch.SCRATCH_DIR_VARIABLE, str(tmp_path / "scratch"))
    monkeypatch.setitem(ProjectionRunner.__init__.__kwdefaults__, "page_size", 5)  # type: ignore[index]
    lg.ingest([event(f"device-{i}", f"user-{i}@example.org") for i in range(200)])
    pages: list[int] = []
    read = lg._log.read

    def slowly(*args: int) -> list:
        pages.append(args[0])
        time.sleep(0.1)
        return read(*args)

    monkeypatch.setattr(lg._log, "read", slowly)
    return pages


def copies(tmp_path: Path) -> list[Path]:
    where = tmp_path / "scratch"
    return list(where.iterdir()) if where.exists() else []


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.parametrize("path", ["/v1/stats?as_of={}", "/v1/merges?as_of={}", "/ui/?as_of={}"])
def test_a_past_read_stops_when_its_client_hangs_up(lg: IdentityLedger, slow_replays: list[int], tmp_path: Path,
                                                    path: str) -> None:
    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as url:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as client:
            client.sendall(f"GET {path.format(lg.position)} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                           f"Authorization: Basic {AUTH}\r\n\r\n".encode())
            wait_for(lambda: len(slow_replays) >= 3 and copies(tmp_path) != [], "the replay did not start")
        # the client hung up
        wait_for(lambda: copies(tmp_path) == [], "the scratch copy outlived its client")
        stopped_at = len(slow_replays)
        time.sleep(1)
        assert len(slow_replays) == stopped_at  # no page read since
        assert stopped_at < 100  # far from the end of the log (a few hundred facts, five a page)
        answer = httpx.get(f"{url}/v1/stats", auth=(API_KEY, SECRET_KEY))  # the server goes on serving
        assert answer.status_code == 200 and answer.json()["events"] == 200
