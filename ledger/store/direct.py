"""The write path's own reads, on one raw driver connection of their own.

Before every request the ledger asks the log a few small questions: its last position, the
aggregates, stream heads and receipts the request can touch. Through SQLAlchemy's pool each
costs a checkout, a ping and a reset on return: on PostgreSQL three round trips where the
question needs one (measured in docs/architecture.md). Here each is one statement on a
connection kept open, in autocommit, that nothing else uses.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import psycopg

from ledger.store.database import Store, postgres_connection, sqlite_pragmas


class DirectReads:
    """Statements in the driver's own placeholder style (`?` SQLite, `%s` PostgreSQL), one at a time.

    A PostgreSQL connection that broke (a restarted server) is opened again once per statement,
    as the pool's ping would; reads are safe to repeat.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._connection: Any = None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._rows(sql, params)
            except psycopg.OperationalError:
                self._close()  # the server dropped the connection: once more, on a new one
                return self._rows(sql, params)

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        if self._connection is None:
            self._connection = self._connect()
        return list(self._connection.execute(sql, params).fetchall())

    def _connect(self) -> Any:
        if self._store.is_postgres:
            return postgres_connection(self._store, autocommit=True)
        connection = sqlite3.connect(self._store.engine.url.database or "", isolation_level=None,
                                     check_same_thread=False)
        sqlite_pragmas(connection, None)
        return connection

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except psycopg.Error:
                pass  # already broken

    def close(self) -> None:
        with self._lock:
            self._close()
