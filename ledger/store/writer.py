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

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any
from uuid import UUID

import psycopg

from ledger.store import reclaiming, settings
from ledger.store.database import SQLITE_CACHE_KIB, SQLITE_CHECKPOINT_PAGES, Store, postgres_connection
from projections.projector import CopySink, copy_rows

#: One row of the log: (originator_id, originator_version, topic, msgpack state).
Row = tuple[UUID, int, str, bytes]

#: From this many rows on, PostgreSQL gets them by COPY (2.4x the multi-row INSERT at 1000 rows;
#: slower for a handful: see `python -m benchmarks.postgres_insert`).
COPY_FROM = 100
RECEIPTS = "ledger_receipts"
_COLUMNS = ("originator_id", "originator_version", "topic", "state")
APPLIED = "ledger_applied"


class Conflict(Exception):
    """Another writer got there first (a version or a receipt is taken): resolve again on fresh state."""


class Transaction:
    """One open write transaction: statements use `?` placeholders on both backends."""

    def __init__(self, cursor: Any, postgres: bool, events_table: str,
                 pipeline: psycopg.Pipeline | None = None) -> None:
        self._cursor = cursor
        self.postgres = postgres
        self._events = events_table
        self._pipeline = pipeline
        #: Appended to a SELECT that must lock the rows it reads (PostgreSQL; SQLite holds the database).
        self.locking = " FOR UPDATE" if postgres else ""
        #: Bulk inserts by `COPY` on PostgreSQL (its `executemany` costs a round of Python per row);
        #: not in a pipelined transaction, where COPY is not allowed (and its rows are few).
        self.copy: CopySink | None = self._copy if postgres and pipeline is None else None

    def _copy(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        copy_rows(self._cursor, table, columns, rows)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement that returns no rows. Pipelined, it does not wait for the server."""
        self._cursor.execute(self._sql(sql), params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (pipelined: waits for them)."""
        self._cursor.execute(self._sql(sql), params)
        return list(self._cursor.fetchall())

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)

    def changed(self) -> int:
        """Rows changed by the last statement (pipelined: once the server has answered everything sent)."""
        if self._pipeline is not None:
            self._pipeline.sync()
        return int(self._cursor.rowcount)

    def insert_events(self, rows: list[Row], after: int = 0) -> list[int]:
        """Append rows to the log; returns their positions, in order, all past `after`.

        `after`: the log's end before this transaction erased rows. SQLite gives a new row the
        largest rowid plus one, so once the last rows are erased their positions would be handed
        out again (a follower that saw them skips the new rows, the projections refuse them);
        PostgreSQL's sequence never goes back.
        """
        if not rows:
            return []
        columns = ", ".join(_COLUMNS)
        if not self.postgres:
            if after and after > self.latest():
                self._cursor.executemany(f"INSERT INTO {self._events} (rowid, {columns}) VALUES (?, ?, ?, ?, ?)",
                                         [(after + number, row[0].hex, row[1], row[2], row[3])
                                          for number, row in enumerate(rows, 1)])
                return list(range(after + 1, after + len(rows) + 1))
            self._cursor.executemany(f"INSERT INTO {self._events} ({columns}) VALUES (?, ?, ?, ?)",
                                     [(row[0].hex, row[1], row[2], row[3]) for row in rows])
            last = self._cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
            return list(range(last - len(rows) + 1, last + 1))
        if len(rows) >= COPY_FROM and self.copy is not None:
            copy_rows(self._cursor, self._events, _COLUMNS, rows)
            # Under the table lock nobody else draws from the sequence: the rows hold the last len(rows) IDs.
            self._cursor.execute(f"SELECT MAX(notification_id) FROM {self._events}")
            last = self._cursor.fetchone()[0]
            return list(range(last - len(rows) + 1, last + 1))
        ids, versions, topics, states = zip(*rows, strict=True)
        self._cursor.execute(
            f"INSERT INTO {self._events} ({columns}) "
            "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) RETURNING notification_id",
            (list(ids), list(versions), list(topics), list(states)))
        # IDs come from the sequence in row order, under the table lock: sorted, they are the rows' positions.
        return sorted(row[0] for row in self._cursor.fetchall())

    def erasing(self) -> str | None:
        """PostgreSQL: this transaction's ID, which `Writer.reclaim` waits on; None on SQLite."""
        return reclaiming.erasing_transaction(self._cursor) if self.postgres else None

    def latest(self) -> int:
        """The log's last position, as this transaction sees it (under the write lock: final)."""
        position = "notification_id" if self.postgres else "rowid"
        return int(self.query(f"SELECT MAX({position}) FROM {self._events}")[0][0] or 0)

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


def _cluster_receipts(tx: Transaction) -> None:
    """Move the receipts of a ledger written before they were `WITHOUT ROWID` (SQLite) into that shape.

    The rows are copied as they are, in the open transaction: the duplicate rule keeps every
    receipt, and an older release reading the table sees the same columns.
    """
    found = tx.query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (RECEIPTS,))
    if not found or "WITHOUT ROWID" in found[0][0].upper():
        return
    tx.execute(f"ALTER TABLE {RECEIPTS} RENAME TO {RECEIPTS}_rowid")
    tx.execute(f"CREATE TABLE {RECEIPTS} (key BLOB PRIMARY KEY, server_time BIGINT NOT NULL) WITHOUT ROWID")
    tx.execute(f"INSERT INTO {RECEIPTS} (key, server_time) SELECT key, server_time FROM {RECEIPTS}_rowid")
    tx.execute(f"DROP TABLE {RECEIPTS}_rowid")


class Writer:
    """The ledger's single write connection."""

    def __init__(self, store: Store) -> None:
        self._postgres = store.is_postgres
        self._events = store.app.recorder.events_table_name  # type: ignore[attr-defined]
        self._connection: Any
        if store.is_postgres:
            self._connection = postgres_connection(store)
            blob = "BYTEA"
        else:
            self._connection = sqlite3.connect(store.engine.url.database or "", isolation_level=None,
                                               check_same_thread=False, timeout=30)
            # FULL, as eventsourcing's recorder (SQLite's default): an acknowledged request survives a power cut.
            # secure_delete: deleted and rewritten content is overwritten with zeros, so an erased
            # person cannot be read back from free space in the file (docs/privacy.md).
            for pragma in ("journal_mode=WAL", "synchronous=FULL", f"cache_size = -{SQLITE_CACHE_KIB}",
                           f"wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}", "secure_delete=ON"):
                self._connection.execute(f"PRAGMA {pragma}")
            blob = "BLOB"
        clustered = "" if store.is_postgres else " WITHOUT ROWID"
        with self.transaction() as tx:
            if not self._postgres:
                _cluster_receipts(tx)
            for statement in _WRITE_TABLES:
                tx.execute(statement.format(blob=blob, clustered=clustered))

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
            with connection.pipeline() if pipelined and self._postgres else nullcontext() as pipeline:
                if self._postgres:
                    cursor.execute(f"LOCK TABLE {self._events} IN EXCLUSIVE MODE")
                else:
                    cursor.execute("BEGIN IMMEDIATE")
                yield Transaction(cursor, self._postgres, self._events, pipeline)
                connection.commit() if self._postgres else cursor.execute("COMMIT")
        except (sqlite3.IntegrityError, psycopg.errors.UniqueViolation) as error:
            connection.rollback()
            raise Conflict(str(error)) from error
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()

    def reclaim(self, tables: list[str], erased_in: str | None) -> bool:
        """After erasing: make deleted rows unreadable on disk; False if it could not complete.

        SQLite: write the WAL back into the (secure_delete) database and truncate it; readers in
        the middle of a transaction can keep it from completing. PostgreSQL: rewrite the tables
        once no snapshot predates the erasing transaction `erased_in` (`ledger.store.reclaiming`;
        the WAL is the operator's).
        """
        connection = self._connection
        if not self._postgres:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return bool(busy == 0)
        assert erased_in is not None, "PostgreSQL needs the erasing transaction's ID"
        connection.autocommit = True
        try:
            return reclaiming.rewrite(connection, tables, erased_in)
        finally:
            connection.autocommit = False

    def close(self) -> None:
        self._connection.close()
