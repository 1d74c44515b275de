"""`ledger apply` as a process, and the lag in `ledger stats` (process wiring: SQLite only; the
writer, its lock and the ledger are tested on both backends in test_buffered.py)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.server.projects import ProjectConfig, parse_projects
from ledger.server.registry import open_projects
from tests.buffer_helpers import projects_toml
from tests.cli_helpers import assert_one_line_error, ledger

LEDGER = [sys.executable, "-c", "import sys; from ledger.cli import main; sys.exit(main())"]


@pytest.fixture
def configs(tmp_path: Path) -> list[ProjectConfig]:
    return parse_projects(tomllib.loads(projects_toml(f"sqlite:///{tmp_path}/web.db", f"sqlite:///{tmp_path}/app.db")))


def test_ledger_apply_catches_up_and_stats_show_the_lag(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       configs: list[ProjectConfig], buffer_url: str) -> None:
    path = tmp_path / "projects.toml"
    path.write_text(projects_toml(configs[0].db, configs[1].db))
    with open_projects(configs, buffer_url) as projects:
        for n in range(3):
            projects.uploading("web-key-1").ingest([{"event_type": "e", "device_id": f"device-{n}"}])
    stats = ["stats", "--projects", str(path), "--project", "web", "--buffer", buffer_url, "--json"]
    before = ledger(capsys, *stats).json()
    assert (before["events"], before["applied_sequence"], before["stream_sequence"], before["lag"]) == (0, 0, 3, 3)

    apply = [*LEDGER, "apply", "--projects", str(path), "--buffer", buffer_url]
    writer = subprocess.Popen(apply, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while (after := ledger(capsys, *stats).json())["lag"]:
            assert time.monotonic() < deadline and writer.poll() is None, after
            time.sleep(0.1)
        assert (after["events"], after["applied_sequence"], after["lag"]) == (3, 3, 0)
        second = subprocess.run([*apply, "--project", "web", "--no-wait"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "another writer applies project 'web'" in second.stderr
    finally:
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(30) == 0
    said = writer.stderr.read() if writer.stderr else ""
    assert "SIGTERM received: stopping" in said, said  # a supervisor's log says why it stopped, and where
    assert "project web: stopped; applied 3 requests in this run, up to stream sequence 3" in said, said


def test_ledger_apply_refuses_an_unknown_project_or_no_buffer(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                              configs: list[ProjectConfig]) -> None:
    path = tmp_path / "projects.toml"
    path.write_text(projects_toml(configs[0].db, configs[1].db))
    assert_one_line_error(ledger(capsys, "apply", "--projects", str(path), "--buffer", "nats://127.0.0.1:4222",
                                 "--project", "nope"), 2, "no project 'nope'")
    assert_one_line_error(ledger(capsys, "apply", "--projects", str(path)), 2, "--buffer")
    assert_one_line_error(ledger(capsys, "apply", "--buffer", "nats://127.0.0.1:4222"), 2, "--projects")


def test_serve_passes_the_projects_and_the_buffer(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path, configs: list[ProjectConfig]) -> None:
    import ledger.server.app as server

    seen: dict[str, object] = {}
    monkeypatch.setattr(server, "serve", lambda **options: seen.update(options))
    monkeypatch.delenv("LEDGER_API_KEY", raising=False)
    path = tmp_path / "projects.toml"
    path.write_text(projects_toml(configs[0].db, configs[1].db))
    assert ledger(capsys, "serve", "--projects", str(path), "--buffer", "nats://127.0.0.1:4222").code == 0
    assert seen["projects"] == configs and seen["buffer"] == "nats://127.0.0.1:4222"
    assert ledger(capsys, "serve", "--projects", str(path), "--project", "app").code == 0
    assert seen["projects"] == configs[1:] and seen["buffer"] is None
    path.write_text("[projects.web]\n")
    assert_one_line_error(ledger(capsys, "serve", "--projects", str(path)), 2, "api_keys must be a list")


def test_apply_winds_down_within_one_budget_even_with_writers_stuck(buffer_url: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    from ledger.buffer.stream import BufferConfig, NatsLink
    from ledger.cli.buffered import _wind_down

    link = NatsLink(BufferConfig.from_url(buffer_url))
    never = threading.Event()
    on_nats = threading.Thread(target=_swallow(lambda: link.call(asyncio.sleep(3600))), name="apply-web")
    elsewhere = threading.Thread(target=never.wait, name="apply-app", daemon=True)
    for thread in (on_nats, elsewhere):
        thread.start()
    started = time.monotonic()
    _wind_down([on_nats, elsewhere], link, 2.0)
    took = time.monotonic() - started
    never.set()
    assert not on_nats.is_alive(), "closing NATS must release a writer waiting on it"
    assert 1.9 <= took < 3.0, took
    assert "apply-app did not stop within 2 s" in caplog.text
    assert "apply-web" not in caplog.text


def _swallow(work: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(Exception):
            work()

    return run
