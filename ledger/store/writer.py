"""The write transaction: one request (or group of requests) in one commit, on one connection.

eventsourcing's recorders commit the events in a transaction of their own, so the read
side needed a second commit per request, and its PostgreSQL recorder also issues
`NOTIFY` in every insert (an instance-wide lock held until the commit is flushed) for
subscribers the ledger does not have: it follows other writers by polling the log's
last position. This writer keeps eventsourcing's tables and its row format, and puts
the events, the insert-ID receipts, the projections and the projections' tracking
position into ONE transaction (see docs/architecture.md for the measurements).

- SQLite: `BEGIN IMMEDIATE` takes the write lock first, so rowids (the log positions)
  are consecutive and nobody else reads a half-applied state.
- PostgreSQL: `LOCK TABLE ... IN EXCLUSIVE MODE`, as eventsourcing does, so positions
  are committed in order and a follower never skips a position that commits later;
  the rows go by `COPY` (large requests) or one multi-row `INSERT ... SELECT FROM
  unnest(...)` (small ones); no `NOTIFY`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ledger.store import settings
from ledger.store.backends.base import COPY_FROM, Backend, CopySink, Row
from ledger.store.database import Store

__all__ = ["APPLIED", "COPY_FROM", "RECEIPTS", "Conflict", "Row", "Transaction", "Writer"]

RECEIPTS = "ledger_receipts"
APPLIED = "ledger_applied"


class Conflict(Exception):
    """Another writer got there first (a version or a receipt is taken): resolve again on fresh state."""


class Transaction:
    """One open write transaction: statements use `?` placeholders on every backend."""

    def __init__(self, cursor: Any, backend: Backend, events_table: str, pipeline: Any = None) -> None:
        self._cursor = cursor
        self.backend = backend
        self._events = events_table
        self._pipeline = pipeline
        #: Appended to a SELECT that must lock the rows it reads ("" where the transaction holds the database).
        self.locking = backend.locking
        #: Whether updates of many rows go as one statement over arrays (`projections.projector.Update`).
        self.arrays = backend.arrays
        #: Bulk inserts (PostgreSQL's `COPY`), or None where `executemany` is as fast or it is not allowed.
        self.copy: CopySink | None = backend.copy_sink(cursor, pipelined=pipeline is not None)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement that returns no rows. Pipelined, it does not wait for the server."""
        self._cursor.execute(self.backend.driver_sql(sql), params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (pipelined: waits for them)."""
        self._cursor.execute(self.backend.driver_sql(sql), params)
        return list(self._cursor.fetchall())

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._cursor.executemany(self.backend.driver_sql(sql), rows)

    def changed(self) -> int:
        """Rows changed by the last statement (pipelined: once the server has answered everything sent)."""
        if self._pipeline is not None:
            self._pipeline.sync()
        return int(self._cursor.rowcount)

    def insert_events(self, rows: list[Row], after: int = 0) -> list[int]:
        """Append rows to the log; returns their positions, in order, all past `after`.

        `after`: the log's end before this transaction erased rows: a position is never handed
        out twice (a follower that saw it would skip the new row, the projections refuse it).
        """
        if not rows:
            return []
        return self.backend.append(self._cursor, self._events, rows, after=after, bulk=self.copy is not None)

    def erasing(self) -> str | None:
        """The erasing transaction's ID, which `Writer.reclaim` needs on PostgreSQL (None where it does not)."""
        return self.backend.erasing(self._cursor)

    def latest(self) -> int:
        """The log's last position, as this transaction sees it (under the write lock: final)."""
        return int(self.query(f"SELECT MAX({self.backend.position}) FROM {self._events}")[0][0] or 0)

    def mark_applied(self, stream: str, sequence: int, stored: int | None) -> None:
        """Store `sequence` as the last message applied from `stream`; `stored` is the one read before."""
        if stored is None:
            self.execute(f"INSERT INTO {APPLIED} (stream, sequence) VALUES (?, ?)", (stream, sequence))
            return
        self.execute(f"UPDATE {APPLIED} SET sequence = ? WHERE stream = ? AND sequence = ?", (sequence, stream, stored))
        if self.changed() != 1:
            raise Conflict(f"another writer applied {stream!r} meanwhile")


_WRITE_TABLES = (
    # The last server time of each (device ID, insert_id) stored: the duplicate rule's memory.
    # On SQLite `WITHOUT ROWID`: the key is the table's b-tree, so a receipt is one insert, not two.
    f"CREATE TABLE IF NOT EXISTS {RECEIPTS} (key {{blob}} PRIMARY KEY, server_time BIGINT NOT NULL){{clustered}}",
    # For callers that feed the ledger from a stream (e.g. NATS): the last message applied, per stream.
    f"CREATE TABLE IF NOT EXISTS {APPLIED} (stream VARCHAR(255) PRIMARY KEY, sequence BIGINT NOT NULL)",
    settings.CREATE,  # the key file's check value, the count of deletion jobs run
)


class Writer:
    """The ledger's single write connection."""

    def __init__(self, store: Store) -> None:
        self._backend = store.backend
        self._events = store.events_table
        self._connection = store.backend.write_connection(store)
        with self.transaction() as tx:
            self._backend.prepare_write_tables(tx._cursor, RECEIPTS)
            for statement in _WRITE_TABLES:
                tx.execute(statement.format(blob=self._backend.blob, clustered=self._backend.clustered))

    @contextmanager
    def transaction(self, pipelined: bool = False) -> Iterator[Transaction]:
        """Commit everything done in the block, or nothing; a taken key raises `Conflict`.

        `pipelined` (PostgreSQL; for a few rows, as COPY is not allowed): statements are sent
        without waiting for each answer, only queries and row counts wait, so a request's dozen
        statements cost a few round trips, not a dozen.
        """
        connection = self._connection
        cursor = connection.cursor()
        try:
            with self._backend.transaction(connection, cursor, self._events, pipelined) as pipeline:
                yield Transaction(cursor, self._backend, self._events, pipeline)
        except self._backend.conflicts as error:
            self._backend.rollback(connection)
            raise Conflict(str(error)) from error
        except BaseException:
            self._backend.rollback(connection)
            raise
        finally:
            cursor.close()

    def reclaim(self, tables: list[str], erased_in: str | None) -> bool:
        """After erasing: make deleted rows unreadable on disk; False if it could not complete
        (`Backend.reclaim`: SQLite truncates its WAL, PostgreSQL rewrites the tables)."""
        return self._backend.reclaim(self._connection, tables, erased_in)

    def close(self) -> None:
        self._connection.close()
