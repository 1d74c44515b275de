"""Keeping the projections in step with the notification log, exactly once.

Each page of events is applied in one transaction together with the projections'
tracking position, so a crash can neither lose nor double-apply an event: the
next catch-up starts where the last committed page ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import sqlalchemy as sa

from projections import tables as t
from projections.projector import Projector

NAME = "identity"
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
#: Reads (position, event) pairs with start < position <= stop, at most `limit` of them.
LogReader = Callable[[int, int, int], list[tuple[int, Any]]]


class ProjectionRunner:
    """Applies the log to the projection tables of one database."""

    def __init__(self, engine: sa.Engine, read_log: LogReader, *, page_size: int = PAGE_SIZE) -> None:
        self.engine = engine
        self.read_log = read_log
        self.page_size = page_size
        self.position = self._create_tables()

    def _create_tables(self) -> int:
        """Create what is missing and return the stored position."""
        t.metadata.create_all(self.engine)
        with self.engine.begin() as connection:
            if connection.execute(sa.select(t.positions.c.position).where(t.positions.c.name == NAME)).first() is None:
                connection.execute(t.positions.insert(), {"name": NAME, "position": 0})
            return _position(connection)

    def apply(self, pairs: list[tuple[int, Any]]) -> bool:
        """Apply events that directly follow the tracked position; False if there is a gap."""
        if not pairs:
            return True
        with self.engine.begin() as connection:
            current = _position(connection, lock=True)
            pairs = [pair for pair in pairs if pair[0] > current]
            if not pairs:
                self.position = current
                return True
            if pairs[0][0] != current + 1:
                self.position = current
                return False
            self._apply_page(connection, current, pairs)
        self.position = pairs[-1][0]
        return True

    def catch_up(self, stop: int, progress: ProgressCallback | None = None) -> int:
        """Apply the log up to `stop`, a page per transaction; returns the new position."""
        started = time.perf_counter()
        first = self.position
        for _ in self._pages(stop):
            if progress is not None:
                progress(Progress(self.position - first, stop - first, time.perf_counter() - started))
        return self.position

    def _pages(self, stop: int) -> Iterator[None]:
        while self.position < stop:
            pairs = self.read_log(self.position, stop, self.page_size)
            with self.engine.begin() as connection:
                current = _position(connection, lock=True)
                if current != self.position:  # another process moved on: follow it
                    self.position = current
                    continue
                if not pairs:  # only gaps left (PostgreSQL skips IDs after rollbacks)
                    _set_position(connection, stop)
                    self.position = stop
                    break
                self._apply_page(connection, current, pairs)
            self.position = pairs[-1][0]
            yield None

    def _apply_page(self, connection: sa.Connection, current: int, pairs: Iterable[tuple[int, Any]]) -> None:
        projector = Projector()
        last = current
        for position, event in pairs:
            projector.apply(position, event)
            last = position
        projector.flush(connection)
        _set_position(connection, last)

    def rebuild(self, stop: int, progress: ProgressCallback | None = None) -> int:
        """Drop every projection table and replay the log from position 0."""
        with self.engine.begin() as connection:
            for table in reversed(t.metadata.sorted_tables):
                table.drop(connection, checkfirst=True)
        self.position = self._create_tables()
        return self.catch_up(stop, progress)


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
