"""Applied requests leave the stream: a routine purge a duplicate window later, an erase after a deletion job,
a max_age for what is never applied, and streams of older versions brought up to date."""

from __future__ import annotations

import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.buffered_processes import NATS_SERVER, free_port, wait_listening
from ledger import IdentityLedger
from ledger.buffer.retention import RoutinePurge, erase_applied
from ledger.buffer.stream import MAX_AGE_S, BadBufferURL, BufferConfig, NatsLink
from ledger.buffer.writer import Writer
from ledger.cli.commands import main
from ledger.server.app import create_app
from ledger.server.projects import ProjectConfig, parse_projects
from ledger.server.registry import open_projects
from tests.buffer_helpers import projects_toml
from tests.server_helpers import running_app

VICTIM = {"user_id": "victim-user-7Qx", "device_id": "victim-device-7Qx",
          "event_properties": {"email": "victim-mail-7Qx@example.org"}}
VICTIM_VALUES = [b"victim-user-7Qx", b"victim-device-7Qx", b"victim-mail-7Qx"]


def upload(url: str, *events: dict) -> httpx.Response:
    return httpx.post(f"{url}/2/httpapi", json={"api_key": "web-key-1", "events": list(events)}, timeout=30)


def test_applied_requests_leave_the_stream_and_a_retry_of_one_is_still_stored_once(
        configs: list[ProjectConfig], buffer_url: str, link: NatsLink) -> None:
    body = {"event_type": "view", "device_id": "device-1"}
    with open_projects(configs, buffer_url) as projects, running_app(create_app(projects)) as url:
        assert upload(url, body).status_code == 200
        assert upload(url, {**body, "device_id": "device-2"}).status_code == 200
        with IdentityLedger(configs[0].db) as ledger:
            writer = Writer(ledger, link, "web")
            writer.retention = RoutinePurge(link, writer.stream, writer.applied, keep_s=0)
            assert writer.apply_available() == 2
            state = link.stream_state("web")
            assert (state.messages, state.first_seq, state.last_seq) == (0, 3, 2)
            assert upload(url, body).status_code == 200  # the client's retry: JetStream still knows its id
            assert writer.apply_available() == 0 and link.last_sequence("web") == 2
            assert ledger.stats().events == 2


def test_the_writer_keeps_applied_requests_for_the_duplicate_window(
        configs: list[ProjectConfig], buffer_url: str, link: NatsLink) -> None:
    with open_projects(configs, buffer_url) as projects, running_app(create_app(projects)) as url:
        assert upload(url, {"event_type": "view", "device_id": "device-1"}).status_code == 200
        with IdentityLedger(configs[0].db) as ledger:
            assert Writer(ledger, link, "web").apply_available() == 1
    assert link.stream_state("web").messages == 1  # a restarted node rebuilds its dedup memory from it


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A nats-server of this test alone, so its store files can be read."""
    store, port = tmp_path / "nats", free_port()
    store.mkdir()
    process = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(process, port, "nats-server")
        yield f"nats://127.0.0.1:{port}", store
    finally:
        process.kill()
        process.wait()


def _occurrences(store: Path) -> int:
    return sum(path.read_bytes().count(value) for path in store.rglob("*") if path.is_file() for value in VICTIM_VALUES)


def test_erase_buffer_after_a_deletion_job_leaves_none_of_the_person_in_the_stream_or_its_files(
        private_nats: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, store = private_nats
    (tmp_path / "projects.toml").write_text(projects_toml(f"sqlite:///{tmp_path / 'web.db'}",
                                                         f"sqlite:///{tmp_path / 'app.db'}"))
    configs = parse_projects(tomllib.loads((tmp_path / "projects.toml").read_text()))
    with open_projects(configs, url) as projects, running_app(create_app(projects)) as server, \
            NatsLink(BufferConfig.from_url(url)) as link:
        for n in range(3):
            assert upload(server, {"event_type": f"view-{n}", **VICTIM}).status_code == 200
        with IdentityLedger(configs[0].db) as ledger:
            assert Writer(ledger, link, "web").apply_available() == 3
            ledger.forget(user_ids=[VICTIM["user_id"]], requester="test", now=True)
        assert upload(server, {"event_type": "later", "device_id": "someone-else"}).status_code == 200
        assert _occurrences(store) > 0
        assert main(["erase-buffer", "--projects", str(tmp_path / "projects.toml"), "--project", "web",
                     "--buffer", url]) == 0
        assert "erased 3 applied requests" in capsys.readouterr().out
        state = link.stream_state("web")
        assert (state.first_seq, state.messages) == (4, 1)  # the unapplied request stays for the writer
        held = link.call(link.js.get_msg("LEDGER_web", 4), 5).data or b""
        assert b"someone-else" in held and not any(value in held for value in VICTIM_VALUES)
    assert _occurrences(store) == 0


def test_a_stream_made_by_an_older_version_gets_its_max_age_in_place(link: NatsLink) -> None:
    old = link.buffer.stream_config("web")
    old.max_age = None
    link.call(link.js.add_stream(old), 10)
    link.ensure_stream("web")
    info = link.call(link.js.stream_info(link.buffer.stream("web")), 10)
    assert info.config.max_age == MAX_AGE_S and info.config.duplicate_window == 15 * 60


def test_max_age_is_a_duration_longer_than_the_duplicate_window() -> None:
    assert BufferConfig.from_url("nats://n1:4222?max_age=36h").max_age_s == 36 * 3600
    assert BufferConfig.from_url("nats://n1:4222").stream_config("web").max_age == 7 * 86400
    for bad in ("10m", "7", "-1d", "1y", "99999999d", "7d\x00", "", "9" * 400 + "d"):
        with pytest.raises(BadBufferURL, match="max_age must be a duration"):
            BufferConfig.from_url(f"nats://n1:4222?max_age={bad}")


def test_erasing_a_project_whose_stream_was_never_made_says_it_holds_nothing(link: NatsLink) -> None:
    erased = erase_applied(link, "web", 0)
    assert (erased.erased, erased.unapplied) == (0, 0) and "holds nothing up to sequence 0" in erased.describe()
