"""SQLite: the embedded default, a file (or a private scratch file) beside a key file and a lock file.

- Positions are rowids; originator IDs are stored as hex text (eventsourcing's SQLite recorder).
- Writes: `BEGIN IMMEDIATE` takes the write lock first, so rowids are consecutive and nobody
  reads a half-applied state; one `executemany` appends the log rows.
- The write connection runs `synchronous=FULL` (an acknowledged request survives a power cut),
  WAL, a 64 MB page cache and `secure_delete` (an erased person cannot be read back from free
  space in the file); reclaiming after an erasure writes the WAL back and truncates it.
- Locks: `flock` on `<database>-writers.lock` (shared by every open ledger), a POSIX record lock on
  the same file for schema setup, an exclusive `flock` on `<database>.writer-lock` for a buffered
  project's writer.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa

from ledger.errors import LedgerFileReplaced
from ledger.store import sqlite_factory
from ledger.store.backends.base import LOG_COLUMNS, Backend, Location, Opened, Pause, Row, RowsOf, SharedLock, StreamReads
from ledger.store.scratch import new_scratch_dir

if TYPE_CHECKING:
    from ledger.store.database import Store

#: SQLite page cache per connection, in KiB (SQLite's default is 2 MB).
SQLITE_CACHE_KIB = 64 * 1024
#: Write the WAL back into the database every this many pages (SQLite's default is 1000):
#: a page that many requests change is then written back once, not once per checkpoint.
SQLITE_CHECKPOINT_PAGES = 65536
#: SQLite allows 32766 bound parameters per statement; stay far below.
IN_CHUNK = 900


def make_wal(path: str) -> None:
    """Put the database file in WAL mode before eventsourcing connects, reading the pragma's reply and
    closing the connection: no statement of it stays in progress (see `ledger.store.sqlite_factory`)."""
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL").fetchall()
    finally:
        connection.close()


def sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
    cursor.execute("PRAGMA secure_delete=ON")  # projections' rewritten rows leave no readable remains
    cursor.close()


def _lock_file(database: str) -> str:
    return f"{database}-writers.lock"


class FileLock(SharedLock):
    """`flock` on the lock file beside the database; remembers which file (device, inode) it opened."""

    def __init__(self, path: str) -> None:
        self._path = path
        stat = os.stat(path)
        self._file_id = (stat.st_dev, stat.st_ino)
        self._fd: int | None = os.open(_lock_file(path), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def check_file(self) -> None:
        try:
            stat: os.stat_result | None = os.stat(self._path)
        except FileNotFoundError:
            stat = None
        if stat is None or (stat.st_dev, stat.st_ino) != self._file_id:
            raise LedgerFileReplaced(
                f"the ledger file {self._path} was deleted or replaced while this process had it open;"
                " nothing more is stored: restart the process on the right file"
            )

    def try_exclusive(self) -> bool:
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self._fd, fcntl.LOCK_SH)  # a failed conversion may have dropped the shared lock
            return False
        return True

    def back_to_shared(self) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextmanager
def _setup_lock(database: str) -> Iterator[None]:
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


@contextmanager
def _file_lock(path: str, pause: Pause) -> Iterator[None]:
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


class _StreamReads(StreamReads):
    """One query per stream, walking its (originator_id, version) index in order, reading only what it returns."""

    def __init__(self, events_table: str, position: str) -> None:
        self._stream = {
            newest: sa.text(f"SELECT {position}, state FROM {events_table} WHERE originator_id = :id "
                            f"AND {position} > :after AND {position} <= :stop "
                            f"ORDER BY originator_version{' DESC' if newest else ''} LIMIT :limit")
            for newest in (False, True)
        }

    def pages(self, connection: sa.Connection, streams: list[Any], *, after: int, stop: int, limit: int,
              newest_first: bool) -> dict[Any, list[Any]]:
        return {stream: list(connection.execute(self._stream[newest_first], {
            "id": stream, "after": after, "stop": stop, "limit": limit})) for stream in streams}


class SQLiteLocation(Location):
    """A file (or a private scratch file); locks on files beside it."""

    def open(self, url: str, parsed: sa.URL, create: bool) -> Opened:
        path = self.local_file(parsed)
        scratch_dir = None
        if path is None:
            scratch_dir = new_scratch_dir()  # found and removed after a crash (`ledger.store.scratch`)
            path = f"{scratch_dir}/ledger.db"
        make_wal(path)
        env = {
            "PERSISTENCE_MODULE": sqlite_factory.TOPIC,
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "30",
        }
        engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", sqlite_pragmas)
        return Opened(engine, env, scratch_dir=scratch_dir)

    def local_file(self, parsed: sa.URL) -> str | None:
        path = parsed.database
        return path if path and path != ":memory:" else None

    def identity(self, parsed: sa.URL) -> str | None:
        path = self.local_file(parsed)
        return None if path is None else "sqlite " + os.path.realpath(path)

    def key_path(self, store: Store) -> str:
        return f"{store.env['SQLITE_DBNAME']}.key"

    def setup_lock(self, parsed: sa.URL) -> AbstractContextManager[None]:
        path = self.local_file(parsed)
        return nullcontext() if path is None else _setup_lock(path)

    def shared_lock(self, store: Store) -> SharedLock:
        return FileLock(store.engine.url.database or "")

    def project_lock(self, parsed: sa.URL, pause: Pause) -> AbstractContextManager[None]:
        path = self.local_file(parsed)
        # A private scratch database: nobody else can write it.
        return nullcontext() if path is None else _file_lock(path + ".writer-lock", pause)


class SQLiteBackend(Backend):
    """`?` placeholders, rowids, hex stream IDs, `BEGIN IMMEDIATE`."""

    location = SQLiteLocation()
    name = "sqlite"
    position = "rowid"
    locking = ""
    arrays = False
    blob = "BLOB"
    clustered = " WITHOUT ROWID"
    index_names = "SELECT name FROM sqlite_master WHERE type = 'index'"
    conflicts = (sqlite3.IntegrityError,)
    broken = ()
    unavailable = (sqlite3.Error,)
    reads_autocommit = False

    def read_connection(self, store: Store) -> Any:
        connection = sqlite3.connect(store.engine.url.database or "", isolation_level=None, check_same_thread=False)
        sqlite_pragmas(connection, None)
        return connection

    def write_connection(self, store: Store) -> Any:
        connection = sqlite3.connect(store.engine.url.database or "", isolation_level=None,
                                     check_same_thread=False, timeout=30)
        # FULL, as eventsourcing's recorder (SQLite's default): an acknowledged request survives a power cut.
        # secure_delete: deleted and rewritten content is overwritten with zeros, so an erased
        # person cannot be read back from free space in the file (docs/privacy.md).
        for pragma in ("journal_mode=WAL", "synchronous=FULL", f"cache_size = -{SQLITE_CACHE_KIB}",
                       f"wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}", "secure_delete=ON"):
            connection.execute(f"PRAGMA {pragma}")
        return connection

    def stream_id(self, originator_id: UUID) -> Any:
        return originator_id.hex

    def select_in(self, rows: RowsOf, sql: str, values: list[Any]) -> list[Any]:
        """`IN (?, ...)`, in chunks below SQLite's limit on bound parameters."""
        found: list[Any] = []
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start:start + IN_CHUNK]
            found += rows(sql.format(**{"in": f"IN ({', '.join('?' * len(chunk))})"}), chunk)
        return found

    @contextmanager
    def transaction(self, connection: Any, cursor: Any, events_table: str, pipelined: bool) -> Iterator[Any]:
        cursor.execute("BEGIN IMMEDIATE")
        yield None
        cursor.execute("COMMIT")

    def rollback(self, connection: Any) -> None:
        connection.rollback()

    def prepare_write_tables(self, cursor: Any, receipts: str) -> None:
        """Move the receipts of a ledger written before they were `WITHOUT ROWID` into that shape.

        The rows are copied as they are, in the open transaction: the duplicate rule keeps every
        receipt, and an older release reading the table sees the same columns.
        """
        found = cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (receipts,)).fetchall()
        if not found or "WITHOUT ROWID" in found[0][0].upper():
            return
        cursor.execute(f"ALTER TABLE {receipts} RENAME TO {receipts}_rowid")
        cursor.execute(f"CREATE TABLE {receipts} (key BLOB PRIMARY KEY, server_time BIGINT NOT NULL) WITHOUT ROWID")
        cursor.execute(f"INSERT INTO {receipts} (key, server_time) SELECT key, server_time FROM {receipts}_rowid")
        cursor.execute(f"DROP TABLE {receipts}_rowid")

    def append(self, cursor: Any, events_table: str, rows: list[Row], *, after: int, bulk: bool) -> list[int]:
        """SQLite gives a new row the largest rowid plus one, so once the last rows are erased their
        positions would be handed out again: past `after`, the rowids are given explicitly."""
        columns = ", ".join(LOG_COLUMNS)
        if after and after > int(cursor.execute(f"SELECT MAX(rowid) FROM {events_table}").fetchone()[0] or 0):
            cursor.executemany(f"INSERT INTO {events_table} (rowid, {columns}) VALUES (?, ?, ?, ?, ?)",
                               [(after + number, row[0].hex, row[1], row[2], row[3])
                                for number, row in enumerate(rows, 1)])
            return list(range(after + 1, after + len(rows) + 1))
        cursor.executemany(f"INSERT INTO {events_table} ({columns}) VALUES (?, ?, ?, ?)",
                           [(row[0].hex, row[1], row[2], row[3]) for row in rows])
        last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
        return list(range(last - len(rows) + 1, last + 1))

    def reclaim(self, connection: Any, tables: list[str], erased_in: str | None) -> bool:
        """Write the WAL back into the (secure_delete) database and truncate it; readers in the middle
        of a transaction can keep it from completing."""
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return bool(busy == 0)

    def stream_reads(self, events_table: str) -> StreamReads:
        return _StreamReads(events_table, self.position)

