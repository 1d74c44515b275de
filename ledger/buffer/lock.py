"""One identity writer per project: a lock held for as long as the writer runs.

PostgreSQL: a session advisory lock keyed by database and schema. SQLite: an exclusive
`flock` on a file beside the database. Both are released by the operating system or the
database server when the process dies, so a standby writer takes over after a crash.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import URL, make_url

from ledger.errors import LedgerError

POLL_S = 0.2


class WriterBusy(LedgerError):
    """Another writer holds the project; this one was told not to wait."""


class LockWaitAbandoned(LedgerError):
    """The writer was told to stop while it waited for the lock: it never held it."""


@contextmanager
def writer_lock(project: str, db_url: str, *, wait: bool = True,
                until: threading.Event | None = None) -> Iterator[None]:
    """Hold the project's writer lock; waits for it (LockWaitAbandoned once `until` is set),
    or raises WriterBusy with `wait=False`."""
    url = make_url(db_url)
    pause = _pause(project, wait, until or threading.Event())
    if url.get_backend_name() == "postgresql":
        with _advisory_lock(url, pause):
            yield
    elif url.database and url.database != ":memory:":
        with _file_lock(url.database + ".writer-lock", pause):
            yield
    else:
        yield  # a private scratch database: nobody else can write it


def _pause(project: str, wait: bool, until: threading.Event) -> Callable[[str], None]:
    """What to do each time the lock is found taken (`holder` says where): wait a poll, or give up."""

    def pause(holder: str) -> None:
        if not wait:
            raise WriterBusy(f"another writer applies project {project!r} ({holder} is locked)")
        if until.wait(POLL_S):
            raise LockWaitAbandoned(f"stopped while waiting for the writer lock of project {project!r}")

    return pause


@contextmanager
def _file_lock(path: str, pause: Callable[[str], None]) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pause(path)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def _advisory_lock(url: URL, pause: Callable[[str], None]) -> Iterator[None]:
    schema = url.query.get("schema", "public")
    plain = url.difference_update_query(["schema"]).set(drivername="postgresql")
    key = int.from_bytes(hashlib.sha256(f"ledger-writer:{plain.database}:{schema}".encode()).digest()[:8],
                         "big", signed=True)
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as connection:
        while not (connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() or (False,))[0]:
            pause(f"schema {schema}")
        yield
