"""The write path's reads of the log: its end, the aggregates, stream heads and receipts a request touches.

Asked before every request, so they go to the driver on a connection of their own (`ledger.store.direct`),
the values of a list in one parameter where the database allows it (`Backend.select_in`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from ledger.store.database import Store, decode_event
from ledger.store.direct import DirectReads
from ledger.store.log_table import LogTable
from ledger.store.writer import APPLIED, RECEIPTS


class WritePathReads(LogTable):
    """What `unit_of_work`, `ingesting` and `following` ask the log before they write."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        table, position = self._table, self._position
        columns = "originator_id, originator_version, topic, state"
        self._by_aggregate = (f"SELECT {columns} FROM {table} WHERE originator_id {{in}} "
                              "ORDER BY originator_id, originator_version")
        self._last_of = sa.text(
            f"SELECT {columns} FROM {table} WHERE originator_id = :id ORDER BY originator_version DESC LIMIT 1"
        )
        self._heads = (f"SELECT originator_id, MAX(originator_version) FROM {table} "
                       "WHERE originator_id {in} GROUP BY originator_id")
        self._receipts = f"SELECT key, server_time FROM {RECEIPTS} WHERE key {{in}}"
        # "Has anything been written?" is asked before every request and query: one statement
        # on a connection of its own, not a checkout of SQLAlchemy's pool (`ledger.store.direct`).
        self._latest_sql = f"SELECT MAX({position}) FROM {table}"
        self._direct = DirectReads(store)

    def latest(self) -> int:
        """The position of the last stored event (0 for an empty ledger)."""
        return int(self._direct.rows(self._latest_sql)[0][0] or 0)

    def close(self) -> None:
        self._direct.close()

    def _select_in(self, sql: str, values: list[Any]) -> list[Any]:
        """Rows of `sql` whose `{in}` matches any of `values`, on the direct connection.

        SQLAlchemy's expanding parameters cost more than the query itself for the few
        values a request asks about (`Backend.select_in`: SQLite `IN (?, ...)` in chunks,
        PostgreSQL `= ANY(%s)`, the whole list as one array parameter).
        """
        if not values:
            return []
        return self._backend.select_in(self._direct.rows, sql, values)

    def events_by_aggregate(self, originator_ids: Iterable[UUID]) -> dict[UUID, list[Any]]:
        """Every event of each given aggregate, in version order; absent aggregates are left out."""
        found: dict[UUID, list[Any]] = {}
        for row in self._select_in(self._by_aggregate, [self._param(originator_id) for originator_id in originator_ids]):
            originator_id = self._uuid(row[0])
            found.setdefault(originator_id, []).append(decode_event(row[2], row[3], originator_id, row[1]))
        return found

    def last_event(self, originator_id: UUID) -> Any | None:
        with self.engine.connect() as connection:
            row = connection.execute(self._last_of, {"id": self._param(originator_id)}).first()
        return None if row is None else decode_event(row[2], row[3], originator_id, row[1])

    def heads(self, streams: Iterable[UUID]) -> dict[UUID, int]:
        """The last version of each stream that has one."""
        rows = self._select_in(self._heads, [self._param(stream) for stream in streams])
        return {self._uuid(originator_id): version for originator_id, version in rows}

    def receipts(self, keys: Iterable[bytes]) -> dict[bytes, int]:
        """The server time of the last stored call of each duplicate key that has one."""
        return {bytes(key): server_time for key, server_time in self._select_in(self._receipts, list(keys))}

    def applied(self) -> dict[str, int]:
        """The last message applied from each stream (see `IdentityLedger.ingest(applied=...)`)."""
        with self.engine.connect() as connection:
            return dict(connection.execute(sa.text(f"SELECT stream, sequence FROM {APPLIED}")).all())
