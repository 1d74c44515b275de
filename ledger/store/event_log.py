"""Bulk reads of the stored events, straight from eventsourcing's events table.

eventsourcing writes the events (one transaction per request); reading them back one
aggregate or one notification at a time through its recorder costs a round of
Python objects and a transaction each. These reads go through SQLAlchemy instead:
many aggregates in one query before a request, and large pages of the log for
catch-up and rebuild. Rows are decoded by the same msgspec mapper.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Iterable
from uuid import UUID

import sqlalchemy as sa

from ledger.store.database import Store, decode_event

#: SQLite allows 32766 bound parameters per statement; stay far below.
IN_CHUNK = 900


class EventLog:
    """Reads of one store's events table, in log order or by aggregate."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        table = store.app.recorder.events_table_name  # type: ignore[attr-defined]
        self._is_postgres = store.is_postgres
        position = "notification_id" if store.is_postgres else "rowid"
        columns = "originator_id, originator_version, topic, state"
        self._by_aggregate = sa.text(
            f"SELECT {columns} FROM {table} WHERE originator_id IN :ids ORDER BY originator_id, originator_version"
        ).bindparams(sa.bindparam("ids", expanding=True))
        self._last_of = sa.text(
            f"SELECT {columns} FROM {table} WHERE originator_id = :id ORDER BY originator_version DESC LIMIT 1"
        )
        self._page = sa.text(
            f"SELECT {position}, {columns} FROM {table} "
            f"WHERE {position} > :start AND {position} <= :stop ORDER BY {position} LIMIT :limit"
        )
        self._page_ids = sa.text(
            f"SELECT {position}, originator_id FROM {table} "
            f"WHERE {position} > :start AND {position} <= :stop ORDER BY {position} LIMIT :limit"
        )
        self._latest = sa.text(f"SELECT MAX({position}) FROM {table}")
        # "Has anything been written?" is asked before every request and query; on SQLite a
        # plain connection answers it in microseconds, SQLAlchemy's pool in a hundred.
        self._latest_sql = f"SELECT MAX(rowid) FROM {table}"
        self._sqlite: sqlite3.Connection | None = None
        if not store.is_postgres:
            self._sqlite = sqlite3.connect(store.engine.url.database or "", isolation_level=None,
                                           check_same_thread=False)
        self._sqlite_lock = threading.Lock()

    def _param(self, originator_id: UUID) -> Any:
        return originator_id if self._is_postgres else originator_id.hex

    def _uuid(self, value: Any) -> UUID:
        return value if isinstance(value, UUID) else UUID(hex=value)

    def latest(self) -> int:
        """The position of the last stored event (0 for an empty ledger)."""
        if self._sqlite is not None:
            with self._sqlite_lock:
                return self._sqlite.execute(self._latest_sql).fetchone()[0] or 0
        with self.engine.connect() as connection:
            return connection.execute(self._latest).scalar() or 0

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()

    def events_by_aggregate(self, originator_ids: Iterable[UUID]) -> dict[UUID, list[Any]]:
        """Every event of each given aggregate, in version order; absent aggregates are left out."""
        ids = [self._param(originator_id) for originator_id in originator_ids]
        found: dict[UUID, list[Any]] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(ids), IN_CHUNK):
                for row in connection.execute(self._by_aggregate, {"ids": ids[start:start + IN_CHUNK]}):
                    originator_id = self._uuid(row[0])
                    found.setdefault(originator_id, []).append(decode_event(row[2], row[3], originator_id, row[1]))
        return found

    def last_event(self, originator_id: UUID) -> Any | None:
        with self.engine.connect() as connection:
            row = connection.execute(self._last_of, {"id": self._param(originator_id)}).first()
        return None if row is None else decode_event(row[2], row[3], originator_id, row[1])

    def read(self, start: int, stop: int, limit: int) -> list[tuple[int, Any]]:
        """Up to `limit` (position, event) pairs with start < position <= stop, in log order.

        For projections only: their events keep `originator_id` as the column holds it
        (a hex string on SQLite), since parsing a UUID per event costs a fifth of a replay
        and no projection reads it.
        """
        with self.engine.connect() as connection:
            rows = connection.execute(self._page, {"start": start, "stop": stop, "limit": limit}).all()
        return [(row[0], decode_event(row[3], row[4], row[1], row[2])) for row in rows]

    def originators(self, start: int, stop: int, limit: int) -> list[tuple[int, UUID]]:
        """Which aggregates the events after `start` belong to, without decoding their state."""
        with self.engine.connect() as connection:
            rows = connection.execute(self._page_ids, {"start": start, "stop": stop, "limit": limit}).all()
        return [(row[0], self._uuid(row[1])) for row in rows]
