"""The naive way, as the eventsourcing docs would first suggest it: the baseline to beat by 10x.

An `Application` with default settings (JSON transcoder, no aggregate cache) on an
SQLite file, one aggregate per device, and per call: load the device from the
repository, record the event on it, `save()` it. It resolves no identities at all,
so it does less work per call than the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from sqlalchemy.engine import make_url

from benchmarks.measure import Run
from benchmarks.workload import Event


class NaiveDevice(Aggregate):
    """Every call a device made, as one event each."""

    @event("Seen")
    def __init__(self, device_id: str) -> None:
        self.device_id = device_id

    @staticmethod
    def create_id(device_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, device_id)

    @event("Tracked")
    def track(self, call: dict[str, Any]) -> None:
        """The event carries the call as sent; the aggregate keeps nothing of it."""


def naive_ingest(sqlite_url: str, events: Iterable[Event]) -> Run:
    """One load, one event and one `save()` per call; items are the calls saved."""
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": make_url(sqlite_url).database or ""}
    app: Application[UUID] = Application(env=env)
    saved = 0
    started = time.perf_counter()
    try:
        for call in events:
            device_id = call["device_id"]
            try:
                device = app.repository.get(NaiveDevice.create_id(device_id))
            except AggregateNotFoundError:
                device = NaiveDevice(device_id)
            device.track(call)
            app.save(device)
            saved += 1
        return Run(saved, time.perf_counter() - started)
    finally:
        app.close()
