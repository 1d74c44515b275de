"""`python -m benchmarks.bypasses`: each place the ledger steps around eventsourcing, against the library's path.

Every pair runs in this one invocation on a scratch SQLite database; the figure is the median
of repeated rounds and the ratio is library / ledger (above 1: the bypass is faster). See
docs/eventsourcing.md for what each bypass assumes about the library.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, StoredEvent

from ledger.domain.keys import UNKEYED
from ledger.domain.model import Device
from ledger.store.database import EventStoreApp, MsgspecMapper, decode_event, open_store
from ledger.store.event_log import EventLog
from ledger.store.writer import Writer

ROUNDS = 7
EVENTS = 1000
NOW = datetime(2024, 3, 4, tzinfo=UTC)


def _median(work: Callable[[], None]) -> float:
    """Median seconds of ROUNDS runs of `work` (after one warm-up)."""
    work()
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _fields(n: int) -> dict[str, Any]:
    return {"originator_id": uuid4(), "originator_version": 2, "timestamp": NOW, "device_id": f"device-{n}", "user_id": None,
                "event_time": n, "server_time": n, "insert_id": f"i-{n}", "amplitude_id": n,
                "previous_amplitude_id": n - 1}


def construction() -> tuple[float, float]:
    """Building EVENTS events: dataclass __init__ (library) vs setting __dict__ (ledger)."""
    rows = [_fields(n) for n in range(EVENTS)]

    def library() -> None:
        for row in rows:
            Device.PointerMoved(**row)

    def ledger() -> None:
        for row in rows:
            built = object.__new__(Device.PointerMoved)
            object.__setattr__(built, "__dict__", dict(row))

    return _median(library), _median(ledger)


def mapping(app: Application[Any]) -> tuple[float, float]:
    """Encoding and decoding EVENTS events: eventsourcing's JSON mapper vs the msgspec mapper."""
    events = [Device.PointerMoved(**_fields(n)) for n in range(EVENTS)]
    library_mapper = Mapper(transcoder=app.construct_transcoder())
    ledger_mapper = MsgspecMapper(transcoder=app.construct_transcoder())

    def library() -> None:
        for event in events:
            library_mapper.to_domain_event(library_mapper.to_stored_event(event))

    def ledger() -> None:
        for event in events:
            stored = ledger_mapper.to_stored_event(event)
            decode_event(stored.topic, stored.state, stored.originator_id, stored.originator_version)

    return _median(library), _median(ledger)


def inserting(directory: str) -> tuple[float, float]:
    """Storing a request of EVENTS events: the core recorder (one execute each) vs the ledger's writer."""
    app = Application[Any](env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                "SQLITE_DBNAME": f"{directory}/{uuid4().hex}.db"})

    def library() -> None:
        app.recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"x") for _ in range(EVENTS)])

    library_time = _median(library)
    app.close()
    store = open_store(f"sqlite:///{directory}/{uuid4().hex}.db")
    writer = Writer(store)

    def ledger() -> None:
        with writer.transaction() as tx:
            tx.insert_events([(uuid4(), 1, "t", b"x") for _ in range(EVENTS)])

    ledger_time = _median(ledger)
    writer.close()
    store.close()
    return library_time, ledger_time


def loading(directory: str) -> tuple[float, float]:
    """Loading EVENTS aggregates before a request: the repository one by one vs one bulk read."""
    store = open_store(f"sqlite:///{directory}/load.db")
    library_app = EventStoreApp(env={**store.env, "CREATE_TABLE": "n"})  # the library's own path, for comparison
    events = []
    for n in range(EVENTS):
        key = UNKEYED.device(f"device-{n}")
        events.append(Device.Seen(originator_topic="Device", originator_id=key, originator_version=1, timestamp=NOW,
                                  device_id=f"device-{n}", user_id=None, event_time=n, server_time=n,
                                  insert_id=None, amplitude_id=n))
    stored = [store.app.mapper.to_stored_event(event) for event in events]
    writer = Writer(store)
    with writer.transaction() as tx:
        tx.insert_events([(s.originator_id, s.originator_version, s.topic, s.state) for s in stored])
    writer.close()
    ids: list[UUID] = [event.originator_id for event in events]
    log = EventLog(store)

    def library() -> None:
        for originator_id in ids:
            library_app.repository.get(originator_id)

    def ledger() -> None:
        for found in log.events_by_aggregate(ids).values():
            aggregate = None
            for event in found:
                aggregate = event.mutate(aggregate)

    figures = _median(library), _median(ledger)
    log.close()
    library_app.close()
    store.close()
    return figures


def reading_the_log(directory: str) -> tuple[float, float]:
    """Reading 20 x EVENTS log events for the projections: notification pages vs one bulk page."""
    store = open_store(f"sqlite:///{directory}/log.db")
    library_app = EventStoreApp(env={**store.env, "CREATE_TABLE": "n"})  # the library's own path, for comparison
    total = 20 * EVENTS
    for start in range(0, total, EVENTS):
        library_app.recorder.insert_events([store.app.mapper.to_stored_event(Device.Seen(
            originator_topic="Device", originator_id=uuid4(), originator_version=1, timestamp=NOW,
            device_id=f"device-{n}", user_id=None, event_time=n, server_time=n, insert_id=None, amplitude_id=n))
            for n in range(start, start + EVENTS)])
    log = EventLog(store)
    mapper = store.app.mapper

    def library() -> None:
        start = 1
        while start <= total:
            page = library_app.recorder.select_notifications(start=start, limit=EVENTS)
            for notification in page:
                mapper.to_domain_event(notification)
            start += len(page)

    def ledger() -> None:
        log.read(0, total, total)

    figures = _median(library), _median(ledger)
    log.close()
    library_app.close()
    store.close()
    return figures


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bypasses-") as directory:
        app = Application[Any](env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        rows = [
            ("event construction (1000 events)", *construction()),
            ("mapper: encode + decode (1000 events)", *mapping(app)),
            ("recorder: insert one request (1000 events)", *inserting(directory)),
            ("load 1000 aggregates before a request", *loading(directory)),
            ("read 20,000 log events for projections", *reading_the_log(directory)),
        ]
    print(f"median of {ROUNDS} rounds, one invocation; ratio = library / ledger")
    print(f"{'what':44}  {'library ms':>10}  {'ledger ms':>9}  {'ratio':>5}")
    for name, library, ledger in rows:
        print(f"{name:44}  {library * 1000:10.2f}  {ledger * 1000:9.2f}  {library / ledger:5.1f}")


if __name__ == "__main__":
    main()
