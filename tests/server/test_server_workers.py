"""`ledger serve --workers N` as a real process tree: every worker answers, nothing is stored twice,
SIGTERM stops them all, a worker that dies stops the server, and bad values are usage errors."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger import IdentityLedger
from ledger.buffer.stream import BufferConfig, NatsLink
from tests.cli_helpers import assert_one_line_error, ledger
from tests.helpers import Clock, event
from tests.server_helpers import API_KEY, SECRET_KEY, wait_for

ROOT = Path(__file__).resolve().parents[2]
#: The CLI in a fresh interpreter running this checkout's code.
CLI = [sys.executable, "-c", "import sys; from ledger.cli import main; sys.exit(main(sys.argv[1:]))"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def err(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> list[int]:
        """The worker PIDs the parent names once every worker serves."""
        found = re.search(r"workers serving: processes ([\d, ]+)", self.err())
        return [int(pid) for pid in found.group(1).split(", ")] if found else []


def _start(tmp_path: Path, db: str, workers: int, port: int, *options: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`ledger serve --workers N [OPTIONS]` on `db` and `port`, its stderr in a file; not waited for."""
    log = tmp_path / "serve.err"
    with log.open("wb") as err:
        process = subprocess.Popen([*CLI, "serve", "--db", db, "--port", str(port), "--api-key", API_KEY,
                                    "--secret-key", SECRET_KEY, "--workers", str(workers), *options],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    return process, log


@contextmanager
def serving(db: str, tmp_path: Path, *options: str, workers: int = 2) -> Iterator[Served]:
    """`ledger serve --workers N [OPTIONS]` on a free port, once every worker serves; killed afterwards if
    still running."""
    port = _free_port()
    process, log = _start(tmp_path, db, workers, port, *options)
    served = Served(process, port, log)
    try:
        wait_for(lambda: bool(served.workers()) or process.poll() is not None, "the workers did not start")
        assert len(served.workers()) == workers, served.err()
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


def _owner(connection: http.client.HTTPConnection, workers: list[int]) -> int:
    """The worker holding the server side of `connection` (Linux /proc: its accepted socket's inode)."""
    assert connection.sock is not None
    client_port, server_port = connection.sock.getsockname()[1], connection.port
    accepted = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)
        if (local, remote) == (server_port, client_port) and fields[3] == "01":  # the server's end, ESTABLISHED
            accepted.add(fields[9])
    owners = [pid for pid in workers if _socket_inodes(pid) & accepted]
    assert len(owners) == 1, owners
    return owners[0]


def _post(connection: http.client.HTTPConnection, events: list[dict[str, str]]) -> int:
    connection.request("POST", "/2/httpapi", json.dumps({"api_key": API_KEY, "events": events}),
                       {"Content-Type": "application/json"})
    reply = connection.getresponse()
    reply.read()
    return reply.status


def _connections_on_every_worker(port: int, workers: list[int]) -> dict[int, list[http.client.HTTPConnection]]:
    """Keep-alive connections, opened until every worker has accepted at least one (the kernel picks)."""
    held: dict[int, list[http.client.HTTPConnection]] = {pid: [] for pid in workers}
    for _ in range(64):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/healthz")
        assert connection.getresponse().read()
        held[_owner(connection, workers)].append(connection)
        if all(held.values()) and sum(map(len, held.values())) >= 6:
            return held
    raise AssertionError(f"64 connections and still a worker without one: {held}")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_two_workers_both_answer_store_each_event_once_and_stop_on_sigterm(
        new_url: Callable[[], str], tmp_path: Path) -> None:
    db = new_url()
    with serving(db, tmp_path) as served:
        workers = served.workers()
        held = _connections_on_every_worker(served.port, workers)
        acknowledged: dict[int, list[str]] = {pid: [] for pid in workers}
        lock = threading.Lock()

        def client(number: int, owner: int, connection: http.client.HTTPConnection) -> None:
            for batch in range(15):  # the same devices from every client: the workers' writes meet
                ids = [f"c{number}-b{batch}-e{n}" for n in range(10)]
                events = [{"device_id": f"device-{n}", "event_type": "view", "insert_id": insert_id}
                          for n, insert_id in enumerate(ids)]
                if _post(connection, events) == 200:
                    with lock:
                        acknowledged[owner] += ids
            connection.close()

        clients = [threading.Thread(target=client, args=(number, owner, connection))
                   for number, (owner, connection) in
                   enumerate((owner, c) for owner, connections in held.items() for c in connections)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(60)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(30) == 0, served.err()
    assert all(acknowledged.values()), acknowledged  # each worker answered on the connections it accepted
    assert sum(map(len, acknowledged.values())) == 150 * sum(map(len, held.values()))  # all of them
    assert "Traceback" not in served.err()
    assert all(_gone(pid) for pid in workers)
    with IdentityLedger(db, create=False) as lg:
        stored = Counter(event.insert_id for event in lg.events(limit=100_000))
    assert set(stored) == {insert_id for ids in acknowledged.values() for insert_id in ids}
    assert set(stored.values()) == {1}
    if db.startswith("sqlite:///"):
        assert not Path(db.removeprefix("sqlite:///") + "-wal").exists()  # every worker closed its ledger


def test_buffered_workers_each_publish_to_the_stream(buffer_url: str, tmp_path: Path) -> None:
    """With --buffer every worker has its own NATS connection; each acknowledged request is in the stream once."""
    with serving(f"sqlite:///{tmp_path / 'buffered.db'}", tmp_path, "--buffer", buffer_url) as served:
        held = _connections_on_every_worker(served.port, served.workers())
        answered = Counter(owner for owner, connections in held.items() for n, connection in enumerate(connections)
                           if _post(connection, [{"user_id": "user-1", "event_type": "view",
                                                  "insert_id": f"{owner}-{n}"}]) == 200)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(30) == 0, served.err()
    assert set(answered) == set(held)
    with NatsLink(BufferConfig.from_url(buffer_url)) as link:
        assert link.last_sequence("default") == sum(answered.values())


def test_the_parent_runs_due_deletion_jobs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'deleting.db'}"
    with IdentityLedger(db, clock=Clock(int((time.time() - 2 * 86_400) * 1000))) as lg:  # filed 2 days ago: due
        lg.ingest([event("device-alice", "alice@example.org"), event("device-bob", "bob@example.org")])
        lg.forget(user_ids=["alice@example.org"], requester="dpo")
    with serving(db, tmp_path) as served:
        wait_for(lambda: "forgotten" in served.err(), "the due job did not run")
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(30) == 0, served.err()
    assert served.err().count("of project default: done, 1 person forgotten") == 1
    with IdentityLedger(db, create=False) as lg:
        assert lg.resolve(user_id="alice@example.org") is None and lg.resolve(user_id="bob@example.org")


def test_a_worker_that_dies_stops_the_server_with_a_clear_error(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'served.db'}", tmp_path) as served:
        killed, other = served.workers()
        os.kill(killed, signal.SIGKILL)
        assert served.process.wait(30) == 2
    lines = served.err().strip().splitlines()
    assert lines[-1] == (f"ledger: error: worker process {killed} was killed by SIGKILL; the server stopped "
                         "(its other workers drained their requests)")
    assert _gone(other)


def test_workers_stop_themselves_when_the_parent_is_killed(tmp_path: Path) -> None:
    with serving(f"sqlite:///{tmp_path / 'orphaned.db'}", tmp_path) as served:
        workers = served.workers()
        served.process.kill()
        served.process.wait()
        wait_for(lambda: all(_gone(pid) for pid in workers), "a worker serves on without its parent", seconds=10)
    assert "Traceback" not in served.err()
    assert not (tmp_path / "orphaned.db-wal").exists()  # each worker drained and closed its ledger


def _has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` holds `path` open."""
    fds = Path(f"/proc/{pid}/fd")
    return any(os.path.realpath(fd) == str(path) for fd in fds.iterdir())


@pytest.mark.parametrize("workers", [1, 3])
def test_sigterm_while_the_server_opens_its_ledger_stops_it_cleanly(tmp_path: Path, workers: int) -> None:
    """The open is held back by a lock on the file, so the signal lands in it every time."""
    db = tmp_path / "held.db"
    with IdentityLedger(f"sqlite:///{db}") as lg:
        lg.ingest([event("device-held")])
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")  # in WAL mode with exclusive locking, every other connection waits
    process, log = _start(tmp_path, f"sqlite:///{db}", workers, _free_port())
    try:
        wait_for(lambda: _has_open(process.pid, db), "the server did not start opening the ledger")
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        holder.rollback()
        holder.close()
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in log.read_text()
    assert "workers serving" not in log.read_text()  # it stopped instead of starting workers
    assert not db.with_name("held.db-wal").exists()  # the ledger was closed, not cut short


def test_sigterm_while_the_workers_start_still_stops_them_all(tmp_path: Path) -> None:
    process, log = _start(tmp_path, f"sqlite:///{tmp_path / 'early.db'}", 3, _free_port())
    try:
        wait_for(lambda: (tmp_path / "early.db").exists(), "the parent did not open the ledger")
        time.sleep(0.2)  # the workers are being spawned or are opening their ledgers
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    # multiprocessing's resource tracker ends once it sees the parent gone: a moment later
    wait_for(lambda: all(_gone(int(pid)) for pid in children), "a child of the server outlived it", seconds=10)


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_a_bad_worker_count_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str) -> None:
    result = ledger(capsys, "serve", "--db", f"sqlite:///{tmp_path / 'never.db'}", "--workers", value,
                    "--api-key", API_KEY, "--secret-key", SECRET_KEY)
    assert_one_line_error(result, 2, "--workers")
    assert not (tmp_path / "never.db").exists()
