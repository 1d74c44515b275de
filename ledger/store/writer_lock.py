"""Which processes have a ledger open, and whether the file they hold is still the ledger.

Every open `IdentityLedger` holds a shared writer lock for its whole life; an operation
that must have the ledger to itself (rebuilding the read side) takes it exclusively and
refuses at once, with a message saying why, while anyone else holds it. On SQLite the lock
is `flock` on a file beside the database (`<database>-writers.lock`); on PostgreSQL a
session-level advisory lock keyed by the schema, held on a connection of its own.

Schema setup on PostgreSQL (`setup_lock`) is serialized across processes by another
advisory lock, so many workers starting at once never race on `CREATE ... IF NOT EXISTS`.

On SQLite the writer also remembers which file (device and inode) it opened: if the path
is deleted or replaced underneath it, every later write or read is refused
(`LedgerFileReplaced`) instead of going into a file nobody will ever open again.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import sqlalchemy as sa

from ledger.errors import LedgerFileReplaced, LedgerInUse
from ledger.store.database import DEFAULT_URL, Store

#: The advisory lock that serializes schema setup on one PostgreSQL database.
_SETUP_KEY = int.from_bytes(hashlib.sha256(b"identity-ledger:schema-setup").digest()[:8], "big", signed=True)


def _postgres_conninfo(url: sa.URL) -> str:
    return url.set(drivername="postgresql").difference_update_query(["schema"]).render_as_string(hide_password=False)


_setup_threads = threading.Lock()


@contextmanager
def setup_lock(url: str | None) -> Iterator[None]:
    """Serialize schema setup across processes (and threads) opening the same database.

    PostgreSQL: an advisory lock. SQLite: a POSIX record lock on the lock file (flock, which
    the writers hold, is a separate kind of lock, so a running server does not block this).
    If the database cannot be reached the block runs unlocked, so opening it reports the real reason.
    """
    try:
        parsed = sa.engine.make_url(url or DEFAULT_URL)
    except sa.exc.ArgumentError:
        parsed = None  # opening it will say what is wrong with the URL
    with _setup_threads:
        if parsed is not None and parsed.get_backend_name() == "postgresql":
            with _postgres_setup_lock(parsed):
                yield
        elif parsed is not None and parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            with _sqlite_setup_lock(parsed.database):
                yield
        else:
            yield


@contextmanager
def _postgres_setup_lock(parsed: sa.URL) -> Iterator[None]:
    try:
        connection = psycopg.connect(_postgres_conninfo(parsed), autocommit=True, connect_timeout=10)
    except (psycopg.Error, ValueError):
        yield
        return
    with connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (_SETUP_KEY,))
        try:
            yield
        finally:
            try:  # explicitly: the server ends a closed session's locks only a moment later
                connection.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_KEY,))
            except psycopg.Error:
                pass  # the session is gone, and its locks with it


@contextmanager
def _sqlite_setup_lock(database: str) -> Iterator[None]:
    try:
        fd = os.open(_lock_file(database), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _lock_file(database: str) -> str:
    return f"{database}-writers.lock"


class WriterLock:
    """The shared lock an open ledger holds; `exclusive()` for operations that need the ledger alone."""

    def __init__(self, store: Store) -> None:
        self._path: str | None = None
        self._file_id: tuple[int, int] | None = None
        self._fd: int | None = None
        self._connection: psycopg.Connection | None = None
        url = store.engine.url
        if store.is_postgres:
            schema = sa.engine.make_url(store.url).query.get("schema", "public")
            self._key = int.from_bytes(hashlib.sha256(f"identity-ledger:writers:{schema}".encode()).digest()[:8],
                                       "big", signed=True)
            self._connection = psycopg.connect(_postgres_conninfo(url), autocommit=True)
            self._connection.execute("SELECT pg_advisory_lock_shared(%s)", (self._key,))
        else:
            self._path = url.database or ""
            stat = os.stat(self._path)
            self._file_id = (stat.st_dev, stat.st_ino)
            self._fd = os.open(_lock_file(self._path), os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def check_file(self) -> None:
        """Raise LedgerFileReplaced if the SQLite path no longer names the file this process opened."""
        if self._path is None:
            return
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            stat = None
        if stat is None or (stat.st_dev, stat.st_ino) != self._file_id:
            raise LedgerFileReplaced(
                f"the ledger file {self._path} was deleted or replaced while this process had it open;"
                " nothing more is stored: restart the process on the right file"
            )

    @contextmanager
    def exclusive(self, what: str) -> Iterator[None]:
        """Run the block as the only process with the ledger open, or raise LedgerInUse at once."""
        if not self._try_exclusive():
            raise LedgerInUse(
                f"cannot {what}: another process (a running `ledger serve`?) has this ledger open; stop it and try again"
            )
        try:
            yield
        finally:
            self._back_to_shared()

    def _try_exclusive(self) -> bool:
        if self._connection is not None:
            row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            return row is not None and bool(row[0])
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._fd, fcntl.LOCK_SH)  # a failed conversion may have dropped the shared lock
            return False
        return True

    def _back_to_shared(self) -> None:
        if self._connection is not None:
            self._connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        else:
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def close(self) -> None:
        if self._connection is not None:
            # Unlock before closing: a closed connection's locks are released only when the
            # server notices, which under load can be after the next process asks for them.
            try:
                self._connection.execute("SELECT pg_advisory_unlock_shared(%s)", (self._key,))
            except psycopg.Error:
                pass  # the connection is gone, and its locks with it
            self._connection.close()
            self._connection = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
