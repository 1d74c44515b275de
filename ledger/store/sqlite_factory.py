"""eventsourcing's SQLite factory, without the one statement it can leave running on a connection.

When eventsourcing's SQLite pool opens its first connection to a database that is not in WAL mode
yet, it runs `PRAGMA journal_mode=WAL` and never reads that statement's reply row. The statement
then stays in progress on the connection until its cursor is freed, and SQLite counts it as a
writing one: while it runs, the `COMMIT` of the `CREATE TABLE` that follows on the same connection
fails with "cannot commit transaction - SQL statements in progress". A database file that another
process has only just created reads as not in WAL mode, so opening one ledger from several
processes at once could fail. `open_store` switches the file to WAL itself, reading the reply and
closing its connection (`ledger.store.backends.sqlite.make_wal`), so this factory's pool skips the check.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.sqlite import SQLiteFactory

#: The `PERSISTENCE_MODULE` value naming this factory (a topic: `module:class`).
TOPIC = "ledger.store.sqlite_factory:WalSQLiteFactory"


class WalSQLiteFactory(SQLiteFactory):
    """SQLiteFactory whose connections never run the journal-mode switch (the database is WAL already)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self.datastore.pool.is_journal_mode_wal = True  # no connection exists yet: none ran the check
