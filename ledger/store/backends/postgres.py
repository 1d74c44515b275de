"""PostgreSQL: a schema of a server's database (`?schema=NAME`, default `public`), through psycopg.

- Positions are `notification_id` (a bigserial); originator IDs are `uuid` columns.
- Writes: `LOCK TABLE ... IN EXCLUSIVE MODE`, as eventsourcing does, so positions are committed
  in order and a follower never skips a position that commits later; the rows go by `COPY`
  (large requests) or one multi-row `INSERT ... SELECT FROM unnest(...)` (small ones); no
  `NOTIFY`. A transaction of a few rows is pipelined (docs/architecture.md has the measurements).
- Reads of many values pass one array (`= ANY(%s)`); a timeline page reads each stream's first
  rows bare and checks the position bounds in Python (`_StreamReads`).
- Locks are advisory locks; reclaiming after an erasure rewrites the tables (`reclaiming`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
import sqlalchemy as sa

from ledger.store.backends import reclaiming
from ledger.store.backends.base import (
    COPY_FROM,
    LOG_COLUMNS,
    Backend,
    BadDatabaseURL,
    CopySink,
    Location,
    Opened,
    Pause,
    Row,
    RowsOf,
    SharedLock,
    StreamReads,
)
from ledger.store.backends.idle_ping import ping_when_idle

if TYPE_CHECKING:
    from ledger.store.database import Store

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: The advisory lock that serializes schema setup on one PostgreSQL database.
_SETUP_KEY = int.from_bytes(hashlib.sha256(b"identity-ledger:schema-setup").digest()[:8], "big", signed=True)


def _conninfo(url: sa.URL) -> str:
    return url.set(drivername="postgresql").difference_update_query(["schema"]).render_as_string(hide_password=False)


#: The ledger's own connections look rows up, and update them, by key lists: the write path's reads
#: (`= ANY(...)`, `ledger.store.direct`) and the projections' updates (`UPDATE ... FROM unnest(...)`,
#: the history tables' `valid_to IS NULL` rows among them). On a table whose statistics are missing
#: or stale (a new ledger fills faster than autovacuum's minute) the planner guesses that such a list
#: matches much of the table and scans all of it, a cost that grows with the log: at 200k events,
#: SDK-sized commits spent 11 ms each closing device pointers' history by hash joins over the whole
#: table. Every one of those statements has an index on its key, so these connections never plan a
#: sequential scan where an index serves (a statement without one still scans).
_KEY_LOOKUPS = " -cenable_seqscan=off"
#: Every connection of the ledger's (the read side's engine and its own write connections) runs without
#: JIT compilation. Its statements are index lookups and bounded pages, and JIT pays off only for long
#: analytic queries; but a planner without statistics overestimates their cost past `jit_above_cost`.
#: A past resolve at 1M events then spent 12.6 ms compiling code for a 0.06 ms index lookup.
_NO_JIT = " -cjit=off"


def _connect(store: Store, *, autocommit: bool, settings: str = "") -> psycopg.Connection[Any]:
    """A raw psycopg connection to the store's database, in its schema (the ledger's own write and hot reads)."""
    url = store.engine.url
    return psycopg.connect(host=url.host or "127.0.0.1", port=url.port or 5432, dbname=url.database or "postgres",
                           user=url.username or "postgres", password=url.password or "",
                           options=f"-csearch_path={store.schema}{_NO_JIT}{settings}", autocommit=autocommit)


def copy_rows(cursor: Any, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """`COPY` rows into a table through a psycopg cursor (a `CopySink`'s work)."""
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


class AdvisoryLock(SharedLock):
    """A session-level advisory lock keyed by the schema, held on a connection of its own."""

    def __init__(self, store: Store) -> None:
        schema = sa.engine.make_url(store.url).query.get("schema", "public")
        self._key = int.from_bytes(hashlib.sha256(f"identity-ledger:writers:{schema}".encode()).digest()[:8],
                                   "big", signed=True)
        self._connection: psycopg.Connection[Any] | None = psycopg.connect(_conninfo(store.engine.url),
                                                                           autocommit=True)
        self._connection.execute("SELECT pg_advisory_lock_shared(%s)", (self._key,))

    def check_file(self) -> None:
        """A server's database has no file of the ledger's to be replaced."""

    def try_exclusive(self) -> bool:
        assert self._connection is not None
        row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        return row is not None and bool(row[0])

    def back_to_shared(self) -> None:
        assert self._connection is not None
        self._connection.execute("SELECT pg_advisory_unlock(%s)", (self._key,))

    def close(self) -> None:
        if self._connection is None:
            return
        # Unlock before closing: a closed connection's locks are released only when the
        # server notices, which under load can be after the next process asks for them.
        try:
            self._connection.execute("SELECT pg_advisory_unlock_shared(%s)", (self._key,))
        except psycopg.Error:
            pass  # the connection is gone, and its locks with it
        self._connection.close()
        self._connection = None


@contextmanager
def _setup_lock(parsed: sa.URL) -> Iterator[None]:
    try:
        connection = psycopg.connect(_conninfo(parsed), autocommit=True, connect_timeout=10)
    except (psycopg.Error, ValueError):
        yield
        return
    with connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (_SETUP_KEY,))
        try:
            yield
        finally:
            try:  # explicitly: the server ends a closed session's locks only a moment later
                connection.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_KEY,))
            except psycopg.Error:
                pass  # the session is gone, and its locks with it


@contextmanager
def _project_lock(url: sa.URL, pause: Pause) -> Iterator[None]:
    schema = url.query.get("schema", "public")
    plain = url.difference_update_query(["schema"]).set(drivername="postgresql")
    key = int.from_bytes(hashlib.sha256(f"ledger-writer:{plain.database}:{schema}".encode()).digest()[:8],
                         "big", signed=True)
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as connection:
        while not (connection.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() or (False,))[0]:
            pause(f"schema {schema}")
        yield


class _StreamReads(StreamReads):
    """PostgreSQL walks a stream's (originator_id, version) index only for a query without other
    conditions: with bounds on the position it sorts the whole stream (no statistics: the bounds
    look selective) or ANDs the position index. So it reads each stream's first `limit` rows bare,
    all streams in one query, and checks the bounds here; a stream they cut into is walked again."""

    def __init__(self, events_table: str, position: str) -> None:
        order = {False: "", True: " DESC"}
        self._tops = {
            newest: sa.text(f"SELECT walk.id, e.{position}, e.state FROM unnest(CAST(:ids AS uuid[])) AS walk(id) "
                            f"CROSS JOIN LATERAL (SELECT {position}, state FROM {events_table} "
                            f"WHERE originator_id = walk.id "
                            f"ORDER BY originator_version{order[newest]} LIMIT :limit) AS e")
            for newest in (False, True)
        }
        self._walk = {
            newest: sa.text(f"SELECT {position}, originator_version FROM {events_table} WHERE originator_id = :id "
                            f"ORDER BY originator_version{order[newest]} LIMIT :limit OFFSET :skip")
            for newest in (False, True)
        }
        self._versions = sa.text(f"SELECT {position}, state FROM {events_table} WHERE originator_id = :id "
                                 "AND originator_version BETWEEN :low AND :high")

    def pages(self, connection: sa.Connection, streams: list[Any], *, after: int, stop: int, limit: int,
              newest_first: bool) -> dict[Any, list[Any]]:
        fetched: dict[Any, list[Any]] = {stream: [] for stream in streams}
        for stream, position, state in connection.execute(self._tops[newest_first], {"ids": streams, "limit": limit}):
            fetched[stream].append((position, state))
        found = {}
        for stream, rows in fetched.items():
            rows.sort(key=lambda row: row[0], reverse=newest_first)
            kept = [row for row in rows if after < row[0] <= stop]
            # Complete when the stream ended, every row read is wanted, or the walk passed the far bound.
            passed = bool(rows) and (rows[-1][0] <= after if newest_first else rows[-1][0] > stop)
            found[stream] = kept if len(rows) < limit or len(kept) == limit or passed else self._walked(
                connection, stream, after=after, stop=stop, limit=limit, newest_first=newest_first)
        return found

    def _walked(self, connection: sa.Connection, stream: Any, *, after: int, stop: int, limit: int,
                newest_first: bool) -> list[Any]:
        """Up to `limit` rows (position, state) of one stream with after < position <= stop, in stream order.

        A stream's positions grow with its versions, so the rows wanted are one range of versions:
        found by walking (position, version) in the page's order, in chunks that double, then read.
        """
        versions: list[int] = []
        skip, chunk = 0, min(limit, 1000)
        while len(versions) < limit:
            walked = connection.execute(self._walk[newest_first], {"id": stream, "limit": chunk, "skip": skip}).all()
            for position, version in walked:
                if position <= after if newest_first else position > stop:
                    break
                if after < position <= stop:
                    versions.append(version)
            else:
                if len(walked) == chunk:
                    skip, chunk = skip + chunk, chunk * 2
                    continue
            break
        versions = versions[:limit]
        if not versions:
            return []
        rows = connection.execute(self._versions, {"id": stream, "low": min(versions), "high": max(versions)}).all()
        return sorted(rows, key=lambda row: row[0], reverse=newest_first)


class PostgresLocation(Location):
    """A schema of a server's database; advisory locks."""

    def open(self, url: str, parsed: sa.URL, create: bool) -> Opened:
        schema = parsed.query.get("schema", "public")
        if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
            raise BadDatabaseURL(f"bad schema name {schema!r}")
        parsed = parsed.difference_update_query(["schema"]).set(drivername="postgresql+psycopg")
        engine = sa.create_engine(parsed, connect_args={"options": f"-csearch_path={schema}{_NO_JIT}"})
        ping_when_idle(engine)
        with engine.begin() as connection:  # fails fast, before eventsourcing's pool would wait for it
            if create:
                connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parsed.database or "postgres",
            "POSTGRES_HOST": parsed.host or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": parsed.username or "postgres",
            "POSTGRES_PASSWORD": parsed.password or "",
            "POSTGRES_SCHEMA": schema,
        }
        return Opened(engine, env, schema=schema)

    def local_file(self, parsed: sa.URL) -> str | None:
        return None

    def identity(self, parsed: sa.URL) -> str | None:
        schema = parsed.query.get("schema", "public")
        return (f"postgresql {(parsed.host or '127.0.0.1').lower()}:{parsed.port or 5432}"
                f"/{parsed.database or 'postgres'} schema {schema}")

    def key_path(self, store: Store) -> str:
        """`$XDG_CONFIG_HOME/identity-ledger/keys/<host>-<port>-<database>-<schema>.key`."""
        env = store.env
        name = "-".join(re.sub(r"[^A-Za-z0-9_.]", "_", part) for part in (
            env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"], env["POSTGRES_SCHEMA"]))
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return os.path.join(config, "identity-ledger", "keys", f"{name}.key")

    def setup_lock(self, parsed: sa.URL) -> AbstractContextManager[None]:
        return _setup_lock(parsed)

    def shared_lock(self, store: Store) -> SharedLock:
        return AdvisoryLock(store)

    def project_lock(self, parsed: sa.URL, pause: Pause) -> AbstractContextManager[None]:
        return _project_lock(parsed, pause)


class PostgresBackend(Backend):
    """`%s` placeholders, `notification_id`, uuid stream IDs, the table lock, `COPY`."""

    location = PostgresLocation()
    name = "postgresql"
    position = "notification_id"
    locking = " FOR UPDATE"
    arrays = True
    blob = "BYTEA"
    clustered = ""
    index_names = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    conflicts = (psycopg.errors.UniqueViolation,)
    broken = (psycopg.OperationalError,)
    unavailable = (psycopg.Error,)
    reads_autocommit = True

    def read_connection(self, store: Store) -> Any:
        return _connect(store, autocommit=True, settings=_KEY_LOOKUPS)

    def write_connection(self, store: Store) -> Any:
        return _connect(store, autocommit=False, settings=_KEY_LOOKUPS)

    def driver_sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def stream_id(self, originator_id: UUID) -> Any:
        return originator_id

    def select_in(self, rows: RowsOf, sql: str, values: list[Any]) -> list[Any]:
        """`= ANY(%s)`, the whole list as one array parameter."""
        return rows(sql.format(**{"in": "= ANY(%s)"}), (values,))

    @contextmanager
    def transaction(self, connection: Any, cursor: Any, events_table: str, pipelined: bool) -> Iterator[Any]:
        with connection.pipeline() if pipelined else nullcontext() as pipeline:
            cursor.execute(f"LOCK TABLE {events_table} IN EXCLUSIVE MODE")
            yield pipeline
            connection.commit()

    def rollback(self, connection: Any) -> None:
        connection.rollback()

    def prepare_write_tables(self, cursor: Any, receipts: str) -> None:
        """Every release created them in today's shape."""

    def append(self, cursor: Any, events_table: str, rows: list[Row], *, after: int, bulk: bool) -> list[int]:
        """The sequence never goes back, so `after` needs nothing."""
        if len(rows) >= COPY_FROM and bulk:
            copy_rows(cursor, events_table, LOG_COLUMNS, rows)
            # Under the table lock nobody else draws from the sequence: the rows hold the last len(rows) IDs.
            cursor.execute(f"SELECT MAX(notification_id) FROM {events_table}")
            last = cursor.fetchone()[0]
            return list(range(last - len(rows) + 1, last + 1))
        ids, versions, topics, states = zip(*rows, strict=True)
        cursor.execute(
            f"INSERT INTO {events_table} ({', '.join(LOG_COLUMNS)}) "
            "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[]) RETURNING notification_id",
            (list(ids), list(versions), list(topics), list(states)))
        # IDs come from the sequence in row order, under the table lock: sorted, they are the rows' positions.
        return sorted(row[0] for row in cursor.fetchall())

    def copy_sink(self, cursor: Any, pipelined: bool) -> CopySink | None:
        """`COPY` (psycopg's `executemany` costs a round of Python per row); not allowed in a pipeline."""
        if pipelined:
            return None

        def copy(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
            copy_rows(cursor, table, columns, rows)
        return copy

    def erasing(self, cursor: Any) -> str | None:
        return reclaiming.erasing_transaction(cursor)

    def reclaim(self, connection: Any, tables: list[str], erased_in: str | None) -> bool:
        """Rewrite the tables once no snapshot predates the erasing transaction `erased_in`
        (`reclaiming`; the WAL is the operator's)."""
        assert erased_in is not None, "PostgreSQL needs the erasing transaction's ID"
        connection.autocommit = True
        try:
            return reclaiming.rewrite(connection, tables, erased_in)
        finally:
            connection.autocommit = False

    def stream_reads(self, events_table: str) -> StreamReads:
        return _StreamReads(events_table, self.position)

    def copy_through(self, connection: sa.Connection) -> CopySink | None:
        def copy(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
            with connection.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
                copy_rows(cursor, table, columns, rows)
        return copy
