"""Opening one SQLite ledger from many processes and threads at once never fails.

On Python 3.12 under load, opening failed with "cannot commit transaction - SQL statements in
progress": eventsourcing's first connection to a database not yet in WAL mode runs
`PRAGMA journal_mode=WAL` without reading its reply, and that unfinished writing statement blocks
the COMMIT of the table creation on the same connection until its cursor is freed.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ledger import IdentityLedger
from ledger.store.database import open_store

PROCESSES = 4
THREADS = 3
ROUNDS = 2


class CursorsKeptConnection(sqlite3.Connection):
    """A connection whose cursors live on after their code lets go of them, as when a collector or a
    tracing hook frees them late: an unfinished statement on one stays in progress."""

    kept: ClassVar[list[sqlite3.Cursor]] = []

    def cursor(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        cursor = super().cursor(*args, **kwargs)
        self.kept.append(cursor)
        return cursor


def test_opening_leaves_no_statement_of_eventsourcing_running(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh file (not in WAL mode yet) opens even when cursors are freed late."""
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *args, **kwargs: connect(
        *args, **{**kwargs, "factory": CursorsKeptConnection}))
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        assert store.app.recorder.events_table_name  # type: ignore[attr-defined]
    finally:
        store.close()
        CursorsKeptConnection.kept.clear()


def _open_in_threads(url: str, ready: Any, failures: Any) -> None:
    """THREADS threads of one process open, write to and close the ledger at the same moment as
    those of the other processes (all wait at `ready`)."""
    ready.wait(120)
    together = threading.Barrier(THREADS)

    def open_once(number: int) -> None:
        try:
            together.wait(60)
            with IdentityLedger(url) as lg:
                lg.ingest([{"event_type": "opened", "device_id": f"device-{os.getpid()}-{number}",
                            "insert_id": f"{os.getpid()}-{number}"}])
        except BaseException as error:  # reported to the test process
            failures.put(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=open_once, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _burn_cpu(stop: Any) -> None:
    """CPU load beside the openers: the failure showed on a busy machine."""
    while not stop.is_set():
        sum(range(10_000))


def test_many_processes_and_threads_open_one_new_ledger_at_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    load = [context.Process(target=_burn_cpu, args=(stop,)) for _ in range(2)]
    for process in load:
        process.start()
    try:
        for round_number in range(ROUNDS):
            url = f"sqlite:///{tmp_path / f'ledger-{round_number}.db'}"
            failures = context.Queue()
            ready = context.Barrier(PROCESSES)
            openers = [context.Process(target=_open_in_threads, args=(url, ready, failures))
                       for _ in range(PROCESSES)]
            for process in openers:
                process.start()
            for process in openers:
                process.join(180)
                assert process.exitcode == 0
            reported = []
            while not failures.empty():
                reported.append(failures.get())
            assert not reported, reported
            with IdentityLedger(url) as lg:
                assert lg.stats().events == PROCESSES * THREADS
    finally:
        stop.set()
        for process in load:
            process.join(30)
