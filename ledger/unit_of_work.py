"""One request's view of the aggregates: a bounded cache in front of the event store.

The hot path never reads the database for an aggregate it already holds: the cache
is trusted inside the process, and the store's unique (originator_id, version) key
catches any staleness at commit time (`eventsourcing.persistence.IntegrityError`).
A failed or abandoned unit of work evicts everything it touched, so the cache only
ever holds committed state.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Recording

from ledger.domain import (
    ALLOCATOR_KEY,
    AmplitudeIds,
    Cause,
    Device,
    Identity,
    JournaledAggregate,
    User,
    device_key,
    identity_key,
    user_key,
)
from ledger.store import EventStoreApp

DEFAULT_CACHE_SIZE = 250_000


class AggregateCache:
    """A least-recently-used map of live aggregates by originator ID."""

    def __init__(self, app: EventStoreApp, maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        self.app = app
        self.maxsize = maxsize
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()

    def get(self, key: UUID) -> Any:
        """The aggregate with this ID, loading it from the store if needed; None if it never existed."""
        items = self._items
        aggregate = items.get(key)
        if aggregate is not None:
            items.move_to_end(key)
            return aggregate
        aggregate = self._load(key)
        if aggregate is not None:
            self.put(aggregate)
        return aggregate

    def _load(self, key: UUID) -> Any:
        if key == ALLOCATOR_KEY:
            return self._load_allocator()
        try:
            return self.app.repository.get(key)
        except AggregateNotFoundError:
            return None

    def _load_allocator(self) -> AmplitudeIds | None:
        """Only the allocator's last event matters: it carries the whole state."""
        stored = list(self.app.recorder.select_events(ALLOCATOR_KEY, desc=True, limit=1))
        if not stored:
            return None
        last = self.app.mapper.to_domain_event(stored[0])
        allocator = AmplitudeIds.__new__(AmplitudeIds)
        allocator.__base_init__(originator_id=ALLOCATOR_KEY, originator_version=last.originator_version,
                                timestamp=last.timestamp)
        AmplitudeIds.__init__(allocator)
        last.apply(allocator)
        return allocator

    def put(self, aggregate: Aggregate) -> None:
        self._items[aggregate.id] = aggregate
        self._items.move_to_end(aggregate.id)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def evict(self, keys: Iterable[UUID]) -> None:
        for key in keys:
            self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()


class UnitOfWork:
    """Collects one request's changes, in the order they happened, for one atomic save."""

    def __init__(self, cache: AggregateCache, server_time: int) -> None:
        self.cache = cache
        self.server_time = server_time
        self.touched: dict[UUID, JournaledAggregate] = {}
        self.events: list[Any] = []
        self._issued = 0

    def _get(self, key: UUID) -> Any:
        aggregate = self.touched.get(key)
        if aggregate is None:
            aggregate = self.cache.get(key)
            if aggregate is not None:
                self._enlist(aggregate)
        return aggregate

    def _enlist(self, aggregate: JournaledAggregate) -> None:
        """From now on the aggregate's new events go to this request's journal, in order."""
        self.touched[aggregate.id] = aggregate
        self.events.extend(aggregate.pending_events)
        aggregate.journal = self.events

    # The `Aggregates` protocol of ledger.resolution.
    def device(self, device_id: str) -> Device | None:
        return self._get(device_key(device_id))

    def user(self, user_id: str) -> User | None:
        return self._get(user_key(user_id))

    def identity(self, amplitude_id: int) -> Identity:
        identity = self._get(identity_key(amplitude_id))
        if identity is None:
            raise LookupError(f"amplitude ID {amplitude_id} is referenced but was never created")
        return identity

    def new_identity(self, cause: Cause) -> Identity:
        allocator = self._allocator()
        amplitude_id = allocator.next_amplitude_id + self._issued
        self._issued += 1
        identity = Identity.create(amplitude_id, cause)
        self.add(identity)
        return identity

    def add(self, aggregate: JournaledAggregate) -> None:
        self._enlist(aggregate)

    def _allocator(self) -> AmplitudeIds:
        allocator = self._get(ALLOCATOR_KEY)
        if allocator is None:
            allocator = AmplitudeIds.start(self.server_time)
            self.add(allocator)
        return allocator

    def commit(self) -> list[Recording[Any]]:
        """Store every collected event in one transaction; the cache then holds the new state."""
        if self._issued:
            self._allocator().reserve(self._issued, self.server_time)
            self._issued = 0
        try:
            recordings = self.cache.app.events.put(self.events) if self.events else []
        except BaseException:
            self.discard()
            raise
        for aggregate in self.touched.values():
            aggregate.collect_events()
            aggregate.journal = None
            self.cache.put(aggregate)
        return recordings

    def discard(self) -> None:
        """Forget uncommitted changes: drop every touched aggregate from the cache."""
        for aggregate in self.touched.values():
            aggregate.journal = None
        self.cache.evict(self.touched)
        self.touched.clear()
        self.events.clear()
