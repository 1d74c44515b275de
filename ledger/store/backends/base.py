"""What differs between the databases the ledger runs on, said once: the `Backend` interface.

Everything else in the store (and the read side, through `projections.runner.Database`) is
written against this interface and never asks which database it runs on. A new database is one
module here that implements `Backend`, one entry in `ledger.store.backends.backend_for`, and a
subclass of the contract suite (`tests/store/backend_contract.py`) that passes.

The log is eventsourcing's events table: its rows are (position, originator_id, version, topic,
state), where the position column and the encoding of the originator ID are the backend's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import sqlalchemy as sa

if TYPE_CHECKING:
    from ledger.store.database import Store

#: One row of the log: (originator_id, originator_version, topic, msgpack state).
Row = tuple[UUID, int, str, bytes]
#: Appends rows to a table in bulk: (table name, column names, rows in that column order).
CopySink = Callable[[str, tuple[str, ...], list[tuple[Any, ...]]], None]
#: Runs one statement in the driver's placeholder style and returns its rows (`DirectReads.rows`).
RowsOf = Callable[[str, Sequence[Any]], list[Any]]
#: Called each time a lock is found taken, with where it is held: waits a while, or raises.
Pause = Callable[[str], None]
#: From this many rows on, bulk inserts go by the backend's `copy_sink` if it has one (on PostgreSQL
#: 2.4x the multi-row INSERT at 1000 rows; slower for a handful: see `python -m benchmarks.postgres_insert`).
COPY_FROM = 100
#: The columns of a log row the ledger writes (the position is the database's).
LOG_COLUMNS = ("originator_id", "originator_version", "topic", "state")


class BadDatabaseURL(ValueError):
    """The URL names no database the ledger can use."""


@dataclass
class Opened:
    """A database made ready by a backend: what `ledger.store.database.open_store` builds its `Store` from."""

    engine: sa.Engine
    #: How eventsourcing is configured for this database (its application's `env`).
    env: dict[str, str]
    #: A private scratch directory deleted on close (`sqlite://`), else None.
    scratch_dir: str | None = None
    schema: str | None = None


class SharedLock(ABC):
    """The shared lock an open ledger holds for its whole life (`ledger.store.writer_lock.WriterLock`)."""

    @abstractmethod
    def check_file(self) -> None:
        """Raise LedgerFileReplaced if the ledger's storage is no longer what was opened (a file replaced)."""

    @abstractmethod
    def try_exclusive(self) -> bool:
        """Turn the shared lock into the exclusive one at once, or return False (still shared)."""

    @abstractmethod
    def back_to_shared(self) -> None:
        """Turn the exclusive lock back into a shared one."""

    @abstractmethod
    def close(self) -> None:
        """Release the lock."""


class StreamReads(ABC):
    """Pages of timeline streams: the reads behind `EventLog.stream_page`, each database's fastest plan."""

    @abstractmethod
    def pages(self, connection: sa.Connection, streams: list[Any], *, after: int, stop: int, limit: int,
              newest_first: bool) -> dict[Any, list[Any]]:
        """Each stream's first `limit` rows (position, state) with after < position <= stop, in stream
        order (oldest first, or newest first); `streams` are originator IDs as the backend stores them."""


class Location(ABC):
    """Where a backend's databases live and who holds them: opening a URL, the file it names, the key
    file's default place, and the locks across processes."""

    @abstractmethod
    def open(self, url: str, parsed: sa.URL, create: bool) -> Opened:
        """Make the database ready for eventsourcing's application and the read side's engine."""

    @abstractmethod
    def local_file(self, parsed: sa.URL) -> str | None:
        """The file on this machine the URL names (None: a server's database, or a private scratch one)."""

    @abstractmethod
    def identity(self, parsed: sa.URL) -> str | None:
        """What the URL points at, however it is spelled; None for a private scratch database."""

    @abstractmethod
    def key_path(self, store: Store) -> str:
        """Where the ledger's key file is by default (`ledger.store.key_file`)."""

    # -- locks --------------------------------------------------------------------

    @abstractmethod
    def setup_lock(self, parsed: sa.URL) -> AbstractContextManager[None]:
        """Serialize schema setup across processes opening the same database (unlocked if it cannot be reached)."""

    @abstractmethod
    def shared_lock(self, store: Store) -> SharedLock:
        """Take the shared lock every open ledger holds."""

    @abstractmethod
    def project_lock(self, parsed: sa.URL, pause: Pause) -> AbstractContextManager[None]:
        """Hold the one-writer lock of a buffered project's database, calling `pause` while it is taken."""


class Backend(ABC):
    """One database: its connections, its SQL dialect, the write transaction, appending to the log, reclaiming;
    where it lives and its locks are its `location`."""

    #: Opening a URL of this database, and its locks.
    location: Location

    #: The URL's backend name (`sqlite`, `postgresql`).
    name: str
    #: The log's position column (eventsourcing's own: `rowid` on SQLite, `notification_id` on PostgreSQL).
    position: str
    #: Appended to a SELECT that must lock the rows it reads ("" where the transaction holds the database).
    locking: str
    #: Whether an update of many rows goes as one statement over two arrays (`Update.over_arrays`).
    arrays: bool
    #: The column type for raw bytes.
    blob: str
    #: Appended to CREATE TABLE for a table stored in its primary key's order ("" where tables are heaps).
    clustered: str
    #: SQL that lists the names of the current schema's indexes.
    index_names: str
    #: The driver's errors that mean another writer took a key first (the batch is resolved again).
    conflicts: tuple[type[Exception], ...]
    #: The driver's errors that mean the server dropped a connection (a read is then tried again once).
    broken: tuple[type[Exception], ...]
    #: Errors the driver raises when its database cannot be reached or used.
    unavailable: tuple[type[Exception], ...]
    #: Whether the read model asks outside a transaction (`Store.read_engine`): where each question's
    #: BEGIN and ROLLBACK are round trips to a server, and buy nothing (each statement reads what is
    #: committed when it starts, in a transaction or not).
    reads_autocommit: bool

    # -- connections and statements -------------------------------------------------

    @abstractmethod
    def read_connection(self, store: Store) -> Any:
        """A raw driver connection in autocommit, for the write path's own reads (`ledger.store.direct`)."""

    @abstractmethod
    def write_connection(self, store: Store) -> Any:
        """The raw driver connection of the ledger's single writer (`ledger.store.writer`)."""

    def driver_sql(self, sql: str) -> str:
        """A statement written with `?` placeholders, in the driver's own style."""
        return sql

    @abstractmethod
    def stream_id(self, originator_id: UUID) -> Any:
        """An originator ID as the log's column holds it (a parameter of a statement)."""

    @abstractmethod
    def select_in(self, rows: RowsOf, sql: str, values: list[Any]) -> list[Any]:
        """Rows of `sql` whose `{in}` matches any of `values` (non-empty), through `rows`."""

    # -- the write transaction ---------------------------------------------------------

    @abstractmethod
    def transaction(self, connection: Any, cursor: Any, events_table: str,
                    pipelined: bool) -> AbstractContextManager[Any]:
        """Begin a write transaction that holds the log's write lock; commit when the block ends.

        Yields the pipeline (statements sent without waiting) when `pipelined` and the database has
        one, else None. The caller rolls back on an error.
        """

    @abstractmethod
    def rollback(self, connection: Any) -> None:
        """Roll the open write transaction back."""

    @abstractmethod
    def prepare_write_tables(self, cursor: Any, receipts: str) -> None:
        """Bring write tables an older release created into today's shape (in the writer's first transaction)."""

    @abstractmethod
    def append(self, cursor: Any, events_table: str, rows: list[Row], *, after: int, bulk: bool) -> list[int]:
        """Append rows to the log under the write lock; returns their positions, in order, all past `after`.

        `after`: the log's end before this transaction erased rows (positions are never handed out
        twice). `bulk`: the rows may go by `copy`.
        """

    def copy_sink(self, cursor: Any, pipelined: bool) -> CopySink | None:
        """Bulk inserts for this transaction, or None where `executemany` is as fast (or not allowed)."""
        return None

    def erasing(self, cursor: Any) -> str | None:
        """The erasing transaction's ID, if `reclaim` needs it."""
        return None

    @abstractmethod
    def reclaim(self, connection: Any, tables: list[str], erased_in: str | None) -> bool:
        """After erasing: make the deleted rows unreadable on disk; False if it could not complete."""

    # -- reads --------------------------------------------------------------------

    @abstractmethod
    def stream_reads(self, events_table: str) -> StreamReads:
        """The timeline stream pages of this log."""

    def copy_through(self, connection: sa.Connection) -> CopySink | None:
        """Bulk inserts on an SQLAlchemy connection of the read side (`projections.runner.Database`)."""
        return None
