"""The write path's own reads, on one raw driver connection of their own.

Before every request the ledger asks the log a few small questions: its last position, the
aggregates, stream heads and receipts the request can touch. Through SQLAlchemy's pool each
cost a checkout, a ping and a reset on return: on PostgreSQL three round trips where the
question needs one (measured in docs/architecture.md; the pool now pings only a connection that
sat idle, `backends.idle_ping`). Here each is one statement on a
connection kept open, in autocommit, that nothing else uses.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ledger.store.database import Store


class DirectReads:
    """Statements in the driver's own placeholder style (`?` SQLite, `%s` PostgreSQL), one at a time.

    A connection that broke (a restarted server: `Backend.broken`) is opened again once per
    statement, as the pool's ping would; reads are safe to repeat.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._connection: Any = None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._rows(sql, params)
            except self._store.backend.broken:
                self._close()  # the server dropped the connection: once more, on a new one
                return self._rows(sql, params)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        if self._connection is None:
            self._connection = self._store.backend.read_connection(self._store)
        return list(self._connection.execute(sql, params).fetchall())

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except self._store.backend.unavailable:
                pass  # already broken

    def close(self) -> None:
        with self._lock:
            self._close()
