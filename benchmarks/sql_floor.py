"""The SQL floor of a rebuild: the statements it sends, replayed with nothing between them.

A target that the statements alone cannot meet is a target of the read side's shape, not of
the code: no Python, however lean, answers faster than the SQL it has to send. So a rebuild's
statements are recorded as the ledger sends them (SQLAlchemy's `before_cursor_execute` and
`commit` events on the read side's engine: every statement, its parameters, the transactions'
ends) and replayed through the bare `sqlite3` driver on the same file: the drops, creates, page
inserts and updates, commits and index builds, one transaction per recorded transaction. The
floor of a rebuild is a scan of the facts plus this replay (it has to read them and write these
rows).

SQLite only: on PostgreSQL the rebuild's bulk inserts go through `COPY`, which these events
do not see.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ledger import IdentityLedger
from ledger.store.backends.sqlite import sqlite_pragmas

#: One statement as sent: (SQL, parameters, whether it went as an executemany).
Statement = tuple[str, Any, bool]


@contextmanager
def recording(engine: sa.Engine) -> Iterator[list[list[Statement]]]:
    """Every statement sent through `engine` while inside, one list per transaction (a new one at each commit)."""
    transactions: list[list[Statement]] = [[]]

    def sent(_connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any,
             executemany: bool) -> None:
        transactions[-1].append((statement, parameters, executemany))

    def committed(_connection: Any) -> None:
        transactions.append([])

    sa.event.listen(engine, "before_cursor_execute", sent)
    sa.event.listen(engine, "commit", committed)
    try:
        yield transactions
    finally:
        sa.event.remove(engine, "before_cursor_execute", sent)
        sa.event.remove(engine, "commit", committed)


def _connect(path: Path) -> sqlite3.Connection:
    """A bare connection with the ledger's own pragmas, committing only when told to."""
    connection = sqlite3.connect(path, isolation_level=None)
    sqlite_pragmas(connection, None)
    return connection


def _replay(connection: sqlite3.Connection, statements: list[Statement]) -> None:
    for sql, parameters, many in statements:
        if many:
            connection.executemany(sql, parameters)
        else:
            connection.execute(sql, parameters).fetchall()


def rebuild_statements(lg: IdentityLedger) -> tuple[float, list[list[Statement]]]:
    """Seconds of `lg.rebuild()` and the statements it sent, by transaction."""
    with recording(lg._store.engine) as transactions:
        started = time.perf_counter()
        lg.rebuild()
        seconds = time.perf_counter() - started
    return seconds, [transaction for transaction in transactions if transaction]


def replay_rebuild(path: Path, transactions: list[list[Statement]]) -> float:
    """Seconds of replaying a rebuild's transactions on the (closed) ledger file at `path`."""
    connection = _connect(path)
    try:
        started = time.perf_counter()
        for transaction in transactions:
            connection.execute("BEGIN")
            _replay(connection, transaction)
            connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()
