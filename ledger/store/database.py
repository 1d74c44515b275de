"""Storage setup: a database URL becomes an eventsourcing event store plus an SQLAlchemy engine.

eventsourcing's core SQLite or PostgreSQL application creates the events table (its recorders
are faster than its SQLAlchemy extension); the ledger writes into it through `ledger.store.writer`
and reads it in bulk through `ledger.store.event_log`. Event state is encoded with msgspec by
`MsgspecMapper`. The read side (projections) gets an SQLAlchemy engine on the same database.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import msgspec
import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, PersistenceError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic
from sqlalchemy.engine import make_url

from ledger.errors import DatabaseUnavailable, LedgerNotFound
from ledger.store.backends import Backend, BadDatabaseURL, backend_for

DEFAULT_URL = "sqlite:///ledger.db"


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
    """The opened database: the event store, the read side's engine, and the backend they run on."""

    url: str
    app: EventStoreApp
    engine: sa.Engine
    backend: Backend
    scratch_dir: str | None = None
    schema: str | None = None
    #: How eventsourcing was configured for this database (its application's `env`).
    env: dict[str, str] = field(default_factory=dict)

    @cached_property
    def read_engine(self) -> sa.Engine:
        """The engine the read model asks through: `engine`, outside a transaction where the backend says so
        (on PostgreSQL a past resolve went from 1.2-1.4 to 0.55 ms without BEGIN and ROLLBACK)."""
        return self.engine.execution_options(isolation_level="AUTOCOMMIT") if self.backend.reads_autocommit \
            else self.engine

    @property
    def events_table(self) -> str:
        """The name of eventsourcing's events table (the log)."""
        return str(self.app.recorder.events_table_name)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.app.close()
        self.engine.dispose()
        if self.scratch_dir is not None:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)


def parse_url(url: str | None) -> sa.URL:
    """The URL parsed (default `sqlite:///ledger.db`); BadDatabaseURL if it is none."""
    try:
        return make_url(url or DEFAULT_URL)
    except sa.exc.ArgumentError as error:
        raise BadDatabaseURL(f"not a database URL: {url!r}") from error


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
    parsed = parse_url(url)
    backend = backend_for(parsed)
    if not create:
        refuse_a_missing_file(url)
    unavailable: tuple[type[Exception], ...] = (sa.exc.OperationalError, PersistenceError, *backend.unavailable)
    try:
        opened = backend.location.open(url, parsed, create)
        store = Store(url, _application(opened.env, create), opened.engine, backend, scratch_dir=opened.scratch_dir,
                      schema=opened.schema, env=opened.env)
    except unavailable as error:
        cause = getattr(error, "orig", None) or error  # SQLAlchemy wraps the driver's error
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise DatabaseUnavailable(f"cannot open {parsed.render_as_string(hide_password=True)}: {reason}") from error
    if not create and not sa.inspect(store.engine).has_table(store.events_table):
        store.close()
        raise LedgerNotFound(f"no ledger at {parsed.render_as_string(hide_password=True)}")
    # eventsourcing created the tables; the ledger writes through `ledger.store.writer` and reads
    # through SQLAlchemy, so its recorder's connections would only sit idle.
    store.app.close()
    return store


def refuse_a_missing_file(url: str | None) -> None:
    """Reading must not create anything: a ledger file that does not exist is LedgerNotFound,
    raised before anything (a database, a lock file) is made beside it."""
    try:
        parsed = parse_url(url)
        path = backend_for(parsed).location.local_file(parsed)
    except BadDatabaseURL:
        return  # open_store says what is wrong with the URL
    if path is not None and not os.path.exists(path):
        raise LedgerNotFound(f"no ledger at {path}")


def _application(env: dict[str, str], create: bool) -> EventStoreApp:
    # The ledger's own settings win over stray environment variables of the process.
    return EventStoreApp(env={**env, "CREATE_TABLE": "y" if create else "n", "IS_SNAPSHOTTING_ENABLED": "n"})
