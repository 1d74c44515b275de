"""Storage setup: a database URL becomes an eventsourcing event store plus an SQLAlchemy engine.

eventsourcing's core SQLite or PostgreSQL application creates the events table (its recorders
are faster than its SQLAlchemy extension); the ledger writes into it through `ledger.store.writer`
and reads it in bulk through `ledger.store.event_log`. Event state is encoded with msgspec by
`MsgspecMapper`. The read side (projections) gets an SQLAlchemy engine on the same database.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
import psycopg
import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, PersistenceError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic
from sqlalchemy.engine import make_url

from ledger.errors import DatabaseUnavailable, LedgerNotFound
from ledger.store import sqlite_factory
from ledger.store.scratch import new_scratch_dir

DEFAULT_URL = "sqlite:///ledger.db"
#: SQLite page cache per connection, in KiB (SQLite's default is 2 MB).
SQLITE_CACHE_KIB = 64 * 1024
#: Write the WAL back into the database every this many pages (SQLite's default is 1000):
#: a page that many requests change is then written back once, not once per checkpoint.
SQLITE_CHECKPOINT_PAGES = 65536
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class MsgspecMapper(Mapper[Any]):
    """Encodes event state with msgpack (msgspec): smaller and faster than the JSON transcoder.

    Stored state holds only the event's own fields; the originator id and version
    live in their columns, as with eventsourcing's own mapper. Like eventsourcing's mapper,
    it stores an event class's `class_version` when above 1 and upcasts older state on
    the way in (`upcast_vN_vN+1` static methods on the event class).
    """

    _encoder = msgspec.msgpack.Encoder()
    _decoder = msgspec.msgpack.Decoder()

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = dict(domain_event.__dict__)
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=self._encoder.encode(state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return decode_event(
            stored_event.topic, stored_event.state, stored_event.originator_id, stored_event.originator_version
        )


@cache
def _event_class(topic: str) -> tuple[type, int]:
    event_class = resolve_topic(topic)
    return event_class, getattr(event_class, "class_version", 1)


def canonical_topic(topic: str) -> str:
    """The name an event class is stored under today (0.1.0 wrote `ledger.domain:<name>`)."""
    return str(getattr(_event_class(topic)[0], "TOPIC", topic))


def decode_state(topic: str, state: bytes) -> dict[str, Any]:
    """An event's stored fields in the shape of its class today (older shapes are upcast)."""
    fields: dict[str, Any] = MsgspecMapper._decoder.decode(state)
    event_class, current = _event_class(topic)
    stored_version = fields.pop("class_version", 1)
    for version in range(stored_version, current):
        getattr(event_class, f"upcast_v{version}_v{version + 1}")(fields)
    return fields


def decode_event(topic: str, state: bytes, originator_id: Any, originator_version: int) -> Any:
    """Rebuild a domain event object from its stored columns, without running its __init__."""
    fields = decode_state(topic, state)
    event_class = _event_class(topic)[0]
    fields["originator_id"] = originator_id
    fields["originator_version"] = originator_version
    event: Any = object.__new__(event_class)
    object.__setattr__(event, "__dict__", fields)
    return event


class EventStoreApp(Application[Any]):
    """The eventsourcing application that owns the event store and its notification log."""

    name = "IdentityLedger"

    def construct_mapper(self) -> Mapper[Any]:
        return MsgspecMapper(transcoder=self.construct_transcoder())


@dataclass(frozen=True)
class Store:
    """The opened database: the event store and the read side's engine."""

    url: str
    app: EventStoreApp
    engine: sa.Engine
    is_postgres: bool
    scratch_dir: str | None = None
    schema: str | None = None
    #: How eventsourcing was configured for this database (its application's `env`).
    env: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.app.close()
        self.engine.dispose()
        if self.scratch_dir is not None:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)


class BadDatabaseURL(ValueError):
    """The URL names no database the ledger can use."""


def open_store(url: str | None = None, *, create: bool = True) -> Store:
    """Open (creating tables as needed) the database named by an SQLAlchemy-style URL.

    With `create=False` a database that holds no ledger raises LedgerNotFound
    instead of becoming an empty ledger; one that cannot be reached raises
    DatabaseUnavailable.

    `sqlite:///path.db` (default `./ledger.db`), `sqlite://` (a private scratch file,
    deleted on close: one code path for every SQLite ledger), or
    `postgresql+psycopg://user:pass@host:port/db` with an optional `?schema=NAME`.
    """
    url = url or DEFAULT_URL
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as error:
        raise BadDatabaseURL(f"not a database URL: {url!r}") from error
    opener = {"sqlite": _open_sqlite, "postgresql": _open_postgres}.get(parsed.get_backend_name())
    if opener is None:
        raise BadDatabaseURL(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://")
    try:
        store = opener(url, parsed, create)
    except (sa.exc.OperationalError, PersistenceError, sqlite3.Error, psycopg.Error) as error:
        cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise DatabaseUnavailable(f"cannot open {parsed.render_as_string(hide_password=True)}: {reason}") from error
    if not create and not sa.inspect(store.engine).has_table(store.app.recorder.events_table_name):  # type: ignore[attr-defined]
        store.close()
        raise LedgerNotFound(f"no ledger at {parsed.render_as_string(hide_password=True)}")
    # eventsourcing created the tables; the ledger writes through `ledger.store.writer` and reads
    # through SQLAlchemy, so its recorder's connections would only sit idle.
    store.app.close()
    return store




def refuse_a_missing_sqlite_file(url: str | None) -> None:
    """Reading must not create anything: an SQLite ledger file that does not exist is LedgerNotFound,
    raised before anything (a database, a lock file) is made beside it."""
    try:
        parsed = make_url(url or DEFAULT_URL)
    except sa.exc.ArgumentError:
        return  # open_store says what is wrong with the URL
    path = parsed.database
    if parsed.get_backend_name() == "sqlite" and path and path != ":memory:" and not os.path.exists(path):
        raise LedgerNotFound(f"no ledger at {path}")


def _open_sqlite(url: str, parsed: sa.URL, create: bool) -> Store:
    path = parsed.database
    scratch_dir = None
    if not create:
        refuse_a_missing_sqlite_file(url)
    if not path or path == ":memory:":
        scratch_dir = new_scratch_dir()  # found and removed after a crash (`ledger.store.scratch`)
        path = f"{scratch_dir}/ledger.db"
    make_wal(path)
    env = {
        "PERSISTENCE_MODULE": sqlite_factory.TOPIC,
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": "30",
    }
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30, "check_same_thread": False})
    sa.event.listen(engine, "connect", sqlite_pragmas)
    return Store(url, _application(env, create), engine, is_postgres=False, scratch_dir=scratch_dir, env=env)


def make_wal(path: str) -> None:
    """Put the database file in WAL mode before eventsourcing connects, reading the pragma's reply and
    closing the connection: no statement of it stays in progress (see `ledger.store.sqlite_factory`)."""
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL").fetchall()
    finally:
        connection.close()


def sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES}")
    cursor.execute("PRAGMA secure_delete=ON")  # projections' rewritten rows leave no readable remains
    cursor.close()


def _open_postgres(url: str, parsed: sa.URL, create: bool) -> Store:
    schema = parsed.query.get("schema", "public")
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise BadDatabaseURL(f"bad schema name {schema!r}")
    parsed = parsed.difference_update_query(["schema"]).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(
        parsed, pool_pre_ping=True, connect_args={"options": f"-csearch_path={schema}"}
    )
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
    return Store(url, _application(env, create), engine, is_postgres=True, schema=schema, env=env)


def postgres_connection(store: Store, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    """A raw psycopg connection to the store's database, in its schema (the ledger's own write and hot reads)."""
    url = store.engine.url
    return psycopg.connect(host=url.host or "127.0.0.1", port=url.port or 5432, dbname=url.database or "postgres",
                           user=url.username or "postgres", password=url.password or "",
                           options=f"-csearch_path={store.schema}", autocommit=autocommit)


def _application(env: dict[str, str], create: bool) -> EventStoreApp:
    # The ledger's own settings win over stray environment variables of the process.
    return EventStoreApp(env={**env, "CREATE_TABLE": "y" if create else "n", "IS_SNAPSHOTTING_ENABLED": "n"})
