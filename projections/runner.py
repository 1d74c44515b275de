"""Keeping the projections in step with the notification log, exactly once.

Each page of events is applied in one transaction together with the projections'
tracking position, so a crash can neither lose nor double-apply an event: the
next catch-up starts where the last committed page ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from projections import tables as t
from projections.collection import collection_paused
from projections.history import drop_orphans
from projections.projector import CopySink, Projector

NAME = "identity"
#: The row in the positions table that holds the tables' shape (`tables.SCHEMA_VERSION`).
SCHEMA = "schema"
PAGE_SIZE = 20_000


@dataclass(frozen=True)
class Progress:
    """Where a long replay stands; handed to the `progress` callback after every page."""

    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        return (self.total - self.done) / self.rate if self.rate > 0 else 0.0


ProgressCallback = Callable[[Progress], None]
#: An identity fact as the log holds it: (position, topic, fields).
Fact = tuple[int, str, dict[str, Any]]
#: Reads the identity facts with start < position <= stop, at most `limit` of them.
LogReader = Callable[[int, int, int], list[Fact]]


class Database(Protocol):
    """What the read side needs to know of the database it writes (the ledger's `Backend` is one)."""

    #: Updates of many rows go as one statement over arrays (`Update.over_arrays`).
    arrays: bool
    #: SQL that lists the names of the current schema's indexes.
    index_names: str

    def driver_sql(self, sql: str) -> str:
        """A statement written with `?` placeholders, in the driver's own style."""
        ...

    def copy_through(self, connection: sa.Connection) -> CopySink | None:
        """Bulk inserts on this connection, or None where `executemany` is as fast."""
        ...


class WriteTransaction(Protocol):
    """The ledger's open write transaction (`?` placeholders), for projecting a request in its own commit."""

    locking: str
    #: Updates of many rows go as one statement over arrays (`Update.over_arrays`).
    arrays: bool
    #: Bulk inserts (PostgreSQL's `COPY`), or None where `executemany` is as fast.
    copy: CopySink | None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...


class ReadSideTooNew(Exception):
    """The projection tables were written by a newer release: never half-use them."""


class ProjectionRunner:
    """Applies the log to the projection tables of one database."""

    def __init__(self, engine: sa.Engine, database: Database, read_log: LogReader, *,
                 page_size: int = PAGE_SIZE) -> None:
        self.engine = engine
        self.database = database
        self.read_log = read_log
        self.page_size = page_size
        self.position = self._create_tables()

    def _create_tables(self) -> int:
        """Create what is missing (rebuilding tables of an older shape) and return the stored position."""
        t.metadata.create_all(self.engine)
        with self.engine.begin() as connection:
            schema = connection.execute(sa.select(t.positions.c.position).where(t.positions.c.name == SCHEMA)).scalar()
            if schema is not None and schema > t.SCHEMA_VERSION:
                raise ReadSideTooNew(f"the read side has schema version {schema}; this release knows up to "
                                     f"{t.SCHEMA_VERSION}")
            if schema != t.SCHEMA_VERSION:
                _drop_tables(connection)
        t.metadata.create_all(self.engine)
        with self.engine.begin() as connection:
            _create_secondary_indexes(connection, self.database)  # a rebuild interrupted before it made them again
            if connection.execute(sa.select(t.positions.c.position).where(t.positions.c.name == NAME)).first() is None:
                _start_positions(connection)
            return _position(connection)

    def apply_in(self, tx: WriteTransaction, facts: list[Fact], first: int, last: int) -> bool:
        """Project the request stored at positions first..last in its own transaction.

        Only if the projections stand right before it (else a later catch-up does it); False then.
        """
        [(current,)] = tx.query(f"SELECT position FROM {t.positions.name} WHERE name = ?{tx.locking}", (NAME,))
        if current != first - 1:
            return False
        projector = Projector(tx.copy, arrays=tx.arrays)
        for fact in facts:
            projector.apply(*fact)
        projector.flush(tx.executemany, tx.execute)
        tx.execute(f"UPDATE {t.positions.name} SET position = ? WHERE name = ?", (last, NAME))
        return True

    def stands_at(self, tx: WriteTransaction, position: int) -> bool:
        """Whether the committed projections stand at `position` (then this runner does too), read in `tx`."""
        [(current,)] = tx.query(f"SELECT position FROM {t.positions.name} WHERE name = ?", (NAME,))
        if current != position:
            return False
        self.position = position
        return True

    def stored_position(self) -> int:
        """Where the read side stands as committed (by any process), read without taking a lock."""
        with self.engine.connect() as connection:
            return _position(connection)

    def moved_to(self, position: int) -> None:
        """The write transaction that projected up to `position` is committed."""
        self.position = position

    def catch_up(self, stop: int, progress: ProgressCallback | None = None) -> int:
        """Apply the log up to `stop`, a page per transaction; returns the new position."""
        started = time.perf_counter()
        first = self.position
        for _ in self._pages(stop):
            if progress is not None:
                progress(Progress(self.position - first, stop - first, time.perf_counter() - started))
        if first == 0 and self.position > 0:  # a replay of the whole log (a rebuild, a new read side)
            with self.engine.begin() as connection:
                drop_orphans(connection)
        return self.position

    def _pages(self, stop: int) -> Iterator[None]:
        while self.position < stop:
            with collection_paused():
                reached = self._page(stop)
            if reached is not None:
                self.position = reached
                yield None

    def _page(self, stop: int) -> int | None:
        """Apply the next page of facts; returns the position reached (None: another process moved on)."""
        facts = self.read_log(self.position, stop, self.page_size)
        # A short page means nothing else up to `stop` (tracked events and gaps are not facts).
        reached = facts[-1][0] if len(facts) == self.page_size else stop
        with self.engine.begin() as connection:
            current = _position(connection, lock=True)
            if current != self.position:  # another process moved on: follow it
                self.position = current
                return None
            self._apply_page(connection, facts, reached)
        return reached

    def _apply_page(self, connection: sa.Connection, facts: Iterable[Fact], reached: int) -> None:
        database = self.database

        def write(sql: str, rows: list[tuple[Any, ...]]) -> None:
            connection.exec_driver_sql(database.driver_sql(sql), rows)

        def execute(sql: str, params: tuple[Any, ...]) -> None:
            connection.exec_driver_sql(database.driver_sql(sql), params)

        projector = Projector(database.copy_through(connection), arrays=database.arrays)
        for fact in facts:
            projector.apply(*fact)
        projector.flush(write, execute)
        _set_position(connection, reached)

    def rebuild(self, stop: int, progress: ProgressCallback | None = None) -> int:
        """Drop every projection table and replay the log's identity facts from position 0.

        The secondary indexes are made after the replay, from the loaded rows: maintained row by
        row they took random inserts into growing indexes; made once they take one sort. The
        replay itself looks rows up by primary key only. Interrupted, the next open makes them.
        """
        with self.engine.begin() as connection:
            _drop_tables(connection)
            _create_empty_tables(connection)
        self.position = 0
        finished: list[Progress] = []  # reported once the indexes exist: on a large log they take a while
        started = time.perf_counter()
        position = self.catch_up(stop, None if progress is None else _holding_back_the_end(progress, finished))
        with self.engine.begin() as connection:
            _create_secondary_indexes(connection, self.database)
        if progress is not None and finished:
            progress(Progress(finished[-1].done, finished[-1].total, time.perf_counter() - started))
        return position


def _holding_back_the_end(progress: ProgressCallback, finished: list[Progress]) -> ProgressCallback:
    """Pass reports on to `progress`, except the last (all done), which goes to `finished`."""
    def report(reached: Progress) -> None:
        if reached.done < reached.total:
            progress(reached)
        else:
            finished.append(reached)
    return report


def _secondary_indexes() -> list[sa.Index]:
    """The projection tables' indexes that no uniqueness rests on (queries use them, replay does not)."""
    return [index for table in t.metadata.sorted_tables for index in sorted(table.indexes, key=lambda i: str(i.name))
            if not index.unique]


def _create_empty_tables(connection: sa.Connection) -> None:
    """Every table with its keys and unique indexes, at position 0; no secondary index (a rebuild makes them last)."""
    for table in t.metadata.sorted_tables:
        connection.execute(sa.schema.CreateTable(table))
        for index in table.indexes:
            if index.unique:
                connection.execute(sa.schema.CreateIndex(index))
    _start_positions(connection)


def _start_positions(connection: sa.Connection) -> None:
    connection.execute(t.positions.insert(), [{"name": NAME, "position": 0},
                                              {"name": SCHEMA, "position": t.SCHEMA_VERSION}])


def _create_secondary_indexes(connection: sa.Connection, database: Database) -> None:
    """Make the ones missing. Looked up first: on PostgreSQL even `CREATE INDEX IF NOT EXISTS`
    takes a lock on the table that would hold up every writer at each open."""
    present = {row[0] for row in connection.exec_driver_sql(database.index_names)}
    for index in _secondary_indexes():
        if index.name not in present:
            connection.execute(sa.schema.CreateIndex(index))


def _drop_tables(connection: sa.Connection) -> None:
    for table in reversed(t.metadata.sorted_tables):
        table.drop(connection, checkfirst=True)
    for name in t.RETIRED_TABLES:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def _position(connection: sa.Connection, *, lock: bool = False) -> int:
    """The tracked position; with `lock`, first take the write lock so no other writer projects meanwhile.

    A no-op UPDATE locks portably: the row on PostgreSQL, the database on SQLite
    (whose driver would otherwise read outside the transaction).
    """
    if lock:
        unchanged = t.positions.update().where(t.positions.c.name == NAME).values(position=t.positions.c.position)
        connection.execute(unchanged)
    return connection.execute(sa.select(t.positions.c.position).where(t.positions.c.name == NAME)).scalar() or 0


def _set_position(connection: sa.Connection, position: int) -> None:
    connection.execute(t.positions.update().where(t.positions.c.name == NAME).values(position=position))
