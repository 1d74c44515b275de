"""`ledger_settings`: a few named values the ledger keeps beside its log (name -> text).

`key_check` tells whether a key file is this ledger's (`ledger.store.key_file`); `forgets`
counts the deletion jobs that ran, so a writer whose request was resolved on state a job
has since erased notices it in its own transaction and resolves again (`ledger.ingesting.Ingester`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

SETTINGS = "ledger_settings"
KEY_CHECK = "key_check"
FORGETS = "forgets"
CREATE = f"CREATE TABLE IF NOT EXISTS {SETTINGS} (name VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)"
_READ = f"SELECT value FROM {SETTINGS} WHERE name = ?"


def read(connection: sa.Connection, name: str) -> str | None:
    value = connection.execute(sa.text(f"SELECT value FROM {SETTINGS} WHERE name = :name"), {"name": name}).scalar()
    return None if value is None else str(value)


def store(connection: sa.Connection, name: str, value: str) -> None:
    connection.execute(sa.text(f"INSERT INTO {SETTINGS} (name, value) VALUES (:name, :value)"),
                       {"name": name, "value": value})


def forgets_in(tx: Any) -> int:
    """How many deletion jobs have run, read in the writer's open transaction."""
    rows = tx.query(_READ, (FORGETS,))
    return int(rows[0][0]) if rows else 0


def count_forget(tx: Any) -> int:
    """Count one more deletion job, in its own transaction; returns the new count."""
    count = forgets_in(tx) + 1
    if count == 1:
        tx.execute(f"INSERT INTO {SETTINGS} (name, value) VALUES (?, ?)", (FORGETS, str(count)))
    else:
        tx.execute(f"UPDATE {SETTINGS} SET value = ? WHERE name = ?", (str(count), FORGETS))
    return count
