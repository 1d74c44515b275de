"""Where runs store their data: fresh SQLite files, or fresh PostgreSQL schemas, per run.

Each backend hands out a new ledger URL per run, a raw table for the physical-limit
baseline (the same shape and indexes as eventsourcing's `stored_events` there), and
a raw reader of a ledger's notification log. `close()` removes everything it made.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import psycopg
from sqlalchemy.engine import make_url

SCAN_BATCH = 10_000
LogRows = Iterator[list[tuple[int, str, bytes]]]


@dataclass
class RawTable:
    """An open DB-API connection to an empty table shaped like the ledger's event table."""

    connection: Any
    insert_sql: str
    originator_id: Callable[[UUID], Any]


class Databases(Protocol):
    name: str

    def ledger_url(self, label: str) -> str: ...

    def raw_table(self, label: str) -> RawTable: ...

    def log_rows(self, ledger_url: str) -> LogRows: ...

    def close(self) -> None: ...


class SQLiteDatabases:
    """One file per run in a scratch directory, opened with the same pragmas as the ledger's store."""

    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _fresh(self, label: str) -> Path:
        path = self.directory / f"{label}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return path

    def ledger_url(self, label: str) -> str:
        return f"sqlite:///{self._fresh(label)}"

    def raw_table(self, label: str) -> RawTable:
        connection = sqlite3.connect(self._fresh(label))
        connection.execute("PRAGMA journal_mode=WAL")  # as eventsourcing's SQLite recorder does
        # The DDL of eventsourcing's SQLite application recorder; rowid is the notification ID.
        connection.execute(
            "CREATE TABLE raw_events (originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
            "PRIMARY KEY (originator_id, originator_version))"
        )
        return RawTable(connection, "INSERT INTO raw_events VALUES (?, ?, ?, ?)", lambda key: key.hex)

    def log_rows(self, ledger_url: str) -> LogRows:
        connection = sqlite3.connect(make_url(ledger_url).database or "")
        try:
            cursor = connection.execute("SELECT rowid, topic, state FROM stored_events ORDER BY rowid")
            while rows := cursor.fetchmany(SCAN_BATCH):
                yield rows
        finally:
            connection.close()

    def close(self) -> None:
        for path in self.directory.glob("*.db*"):
            path.unlink(missing_ok=True)


class PostgresDatabases:
    """One schema per run in the database of `url` (an SQLAlchemy URL); dropped on close."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        self._url = make_url(url).difference_update_query(["schema"])
        self._conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._schemas: list[str] = []

    def _connect(self, schema: str) -> psycopg.Connection[Any]:
        return psycopg.connect(self._conninfo, options=f"-csearch_path={schema}")

    def _fresh(self, label: str) -> str:
        schema = f"bench_{os.getpid()}_{label}".lower()
        with psycopg.connect(self._conninfo, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            connection.execute(f'CREATE SCHEMA "{schema}"')
        self._schemas.append(schema)
        return schema

    def ledger_url(self, label: str) -> str:
        schema = self._fresh(label)
        return self._url.update_query_dict({"schema": schema}).render_as_string(hide_password=False)

    def raw_table(self, label: str) -> RawTable:
        connection = self._connect(self._fresh(label))
        # The DDL of eventsourcing's PostgreSQL application recorder (uuid originator IDs).
        connection.execute(
            "CREATE TABLE raw_events (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
            "topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version))"
        )
        connection.execute("CREATE UNIQUE INDEX raw_events_notification_id_idx ON raw_events (notification_id)")
        connection.commit()
        return RawTable(
            connection,
            "INSERT INTO raw_events (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
            lambda key: key,
        )

    def log_rows(self, ledger_url: str) -> LogRows:
        schema = str(make_url(ledger_url).query["schema"])
        with self._connect(schema) as connection:
            table = connection.execute(
                "SELECT table_name FROM information_schema.columns WHERE table_schema = %s "
                "AND column_name = 'notification_id' AND table_name LIKE '%%events'", (schema,)
            ).fetchone()
            if table is None:
                raise LookupError(f"no event table in schema {schema}")
            with connection.cursor(name="scan") as cursor:
                cursor.execute(f'SELECT notification_id, topic, state FROM "{table[0]}" ORDER BY notification_id')
                while rows := cursor.fetchmany(SCAN_BATCH):
                    yield rows

    def close(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as connection:
            for schema in self._schemas:
                connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        self._schemas.clear()
