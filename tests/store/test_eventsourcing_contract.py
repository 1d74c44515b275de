"""What the ledger assumes about eventsourcing where it steps around the library's usual path.

Each test names one assumption written down in docs/eventsourcing.md. They exercise the
library itself (plus the smallest piece of ledger code that relies on it), so an upgrade of
eventsourcing that changes one of these fails here, by name, rather than somewhere deep in
an ingest.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from eventsourcing.domain import Aggregate, OriginatorVersionError
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, register_topic, resolve_topic

from ledger import IdentityLedger
from ledger.domain.model import Device, JournaledAggregate
from ledger.store.database import EventStoreApp, MsgspecMapper, decode_event, open_store
from ledger.store.writer import Conflict, Writer
from tests.helpers import event

NOW = datetime(2024, 3, 4, tzinfo=UTC)


def stored(originator_id: Any, version: int, topic: str = "Contract.Test", state: bytes = b"\x80") -> StoredEvent:
    return StoredEvent(originator_id=originator_id, originator_version=version, topic=topic, state=state)


@pytest.fixture
def store(new_url: Callable[[], str]) -> Any:
    opened = open_store(new_url())
    yield opened
    opened.close()


# -- topics ----------------------------------------------------------------------------------------


def test_get_topic_honours_an_explicit_TOPIC() -> None:
    """Stored events name their class by `TOPIC`, not by module path, so classes can move."""
    assert get_topic(Device.Seen) == "Device.Seen"
    assert get_topic(Device.PointerMoved) == "Device.PointerMoved"


def test_register_topic_makes_a_name_resolve_to_its_class() -> None:
    """Aggregates are found by `STORED_AS`, and 0.1.0's module-path names by registration."""
    assert resolve_topic("Device") is Device
    assert resolve_topic("Device.Seen") is Device.Seen
    assert resolve_topic("ledger.domain:Device.Seen") is Device.Seen


class Probe(Aggregate):
    """A minimal aggregate built the way the ledger builds its own (explicit topics, no __init__ on events)."""

    def __init__(self, size: int) -> None:
        self.size = size

    class Started(Aggregate.Created):
        TOPIC = "ContractTest.Probe.Started"
        size: int

    class Grew(Aggregate.Event):
        TOPIC = "ContractTest.Probe.Grew"
        by: int

        def apply(self, probe: Any) -> None:
            probe.size += self.by


register_topic("ContractTest.Probe", Probe)


def without_init(event_class: type, fields: dict[str, Any]) -> Any:
    """The ledger's way of building an event (ledger.domain.facts.new_event): no dataclass __init__."""
    built = object.__new__(event_class)
    object.__setattr__(built, "__dict__", fields)
    return built


def started(size: int = 1) -> Any:
    return without_init(Probe.Started, {"originator_topic": "ContractTest.Probe", "originator_id": uuid4(),
                                            "originator_version": 1, "timestamp": NOW, "size": size})


def test_created_mutate_resolves_originator_topic_to_build_the_aggregate() -> None:
    """Loading from the store runs the library's `Created.mutate`, which resolves `originator_topic`
    (the ledger stores an aggregate's `STORED_AS` name there, not its module path)."""
    probe = started(size=4).mutate(None)
    assert type(probe) is Probe and probe.version == 1 and probe.size == 4


def test_mutate_of_a_later_event_checks_and_advances_the_version() -> None:
    probe = started().mutate(None)
    grew = without_init(Probe.Grew, {"originator_id": probe.id, "originator_version": 2, "timestamp": NOW, "by": 2})
    assert grew.mutate(probe) is probe and probe.version == 2 and probe.size == 3
    skipped = without_init(Probe.Grew, {"originator_id": probe.id, "originator_version": 9, "timestamp": NOW, "by": 1})
    with pytest.raises(OriginatorVersionError):
        skipped.mutate(probe)  # the library refuses an event out of sequence


# -- events built without __init__ -----------------------------------------------------------------


def test_events_are_frozen_dataclasses_whose_fields_are_their_state() -> None:
    """Setting `__dict__` directly is only sound if an event is a plain frozen dataclass with a __dict__."""
    for event_class in (Probe.Started, Probe.Grew, Device.Seen, Device.PointerMoved):
        assert dataclasses.is_dataclass(event_class)
        assert event_class.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert event_class.__dictoffset__ != 0  # no __slots__ all the way down
    assert {field.name for field in dataclasses.fields(Probe.Grew)} == {
        "originator_id", "originator_version", "timestamp", "by"}
    assert {field.name for field in dataclasses.fields(Probe.Started)} == {
        "originator_id", "originator_version", "timestamp", "originator_topic", "size"}


def test_an_event_built_without_init_equals_one_built_with_it() -> None:
    fields: dict[str, Any] = {"originator_id": uuid4(), "originator_version": 2, "timestamp": NOW, "by": 5}
    assert without_init(Probe.Grew, dict(fields)) == Probe.Grew(**fields)
    assert hash(without_init(Probe.Grew, dict(fields))) == hash(Probe.Grew(**fields))


def test_aggregates_have_the_base_init_the_ledger_calls() -> None:
    """`JournaledAggregate._create` calls `__base_init__(id, version, timestamp)` in that order."""
    parameters = list(inspect.signature(Aggregate.__base_init__).parameters)
    assert parameters == ["self", "originator_id", "originator_version", "timestamp"]
    assert issubclass(Device, JournaledAggregate) and Aggregate.INITIAL_VERSION == 1


# -- the mapper ------------------------------------------------------------------------------------


def test_the_application_takes_the_mapper_from_construct_mapper(store: Any) -> None:
    assert isinstance(store.app.mapper, MsgspecMapper) and isinstance(store.app.mapper, Mapper)


def test_the_mapper_round_trips_an_event_through_stored_event_fields(store: Any) -> None:
    original = without_init(Probe.Grew, {"originator_id": uuid4(), "originator_version": 3, "timestamp": NOW, "by": 2})
    record = store.app.mapper.to_stored_event(original)
    assert isinstance(record, StoredEvent)
    assert (record.originator_id, record.originator_version, record.topic) == (
        original.originator_id, 3, "ContractTest.Probe.Grew")
    assert decode_event(record.topic, record.state, record.originator_id, record.originator_version) == original


# -- the recorder ----------------------------------------------------------------------------------


@contextmanager
def recorder_of(store: Any) -> Iterator[Any]:
    """eventsourcing's own recorder on the ledger's database, configured as the ledger configures it."""
    app = EventStoreApp(env={**store.env, "CREATE_TABLE": "n"})
    try:
        yield app.recorder
    finally:
        app.close()


def test_the_rows_the_writer_stores_are_notifications_eventsourcing_reads(new_url: Callable[[], str]) -> None:
    """The ledger's own writer fills eventsourcing's table; the library must read them back as its own,
    with the ledger's positions as notification IDs."""
    with IdentityLedger(new_url()) as lg:
        lg.ingest([event("device-contract-1"), event("device-contract-2", "user-contract")])
        with recorder_of(lg._store) as recorder:
            notifications = recorder.select_notifications(start=1, limit=1000)
            assert [n.id for n in notifications] == list(range(1, lg.position + 1))
            assert recorder.max_notification_id() == lg.position
        assert {n.topic for n in notifications} >= {"Device.Seen", "User.Bound"}
        mapper = MsgspecMapper(transcoder=None)  # type: ignore[arg-type]
        seen = next(n for n in notifications if n.topic == "Device.Seen")
        assert mapper.to_domain_event(seen).device_id == "device-contract-1"


def test_a_duplicate_originator_version_is_refused_whole(new_url: Callable[[], str]) -> None:
    """The one-time binding and stale caches rely on eventsourcing's unique (originator_id, version) key:
    a second row with a taken key is refused, and nothing of its transaction is stored."""
    store = open_store(new_url())
    writer = Writer(store)
    taken = uuid4()
    try:
        with writer.transaction() as tx:
            tx.insert_events([(taken, 1, "Contract.Test", b"\x80")])
        with pytest.raises(Conflict):
            with writer.transaction() as tx:
                tx.insert_events([(uuid4(), 1, "Contract.Test", b"\x80"), (taken, 1, "Contract.Test", b"\x80")])
        with recorder_of(store) as recorder:
            assert recorder.max_notification_id() == 1
    finally:
        writer.close()
        store.close()


def test_the_events_table_has_the_columns_the_bulk_reads_select(store: Any) -> None:
    """EventLog reads the table directly: its name and columns, and where the notification ID lives."""
    table = store.app.recorder.events_table_name
    columns = {column["name"] for column in sa.inspect(store.engine).get_columns(table)}
    assert {"originator_id", "originator_version", "topic", "state"} <= columns
    if store.backend.name == "postgresql":
        assert "notification_id" in columns
    else:  # SQLite: the notification ID is the rowid, as the recorder's own max query says
        assert "rowid" in store.app.recorder.select_max_notification_id_statement.lower()


def test_the_application_is_configured_by_its_env_mapping() -> None:
    """open_store passes PERSISTENCE_MODULE, SQLITE_DBNAME, POSTGRES_SCHEMA, ... through `env=`."""
    assert "env" in inspect.signature(EventStoreApp.__init__).parameters
