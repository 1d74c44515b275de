"""One request's view of the aggregates: a bounded cache in front of the event store.

The hot path never reads the database per call: before a request is resolved, every
aggregate it can touch is fetched in a couple of bulk queries (`prefetch`), and the
cache is trusted inside the process. The store's unique (originator_id, version)
key catches any staleness at commit time (`eventsourcing.persistence.IntegrityError`).
A failed or abandoned unit of work evicts everything it touched, so the cache only
ever holds committed state.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable
from uuid import UUID

from ledger.domain.calls import Call
from ledger.domain.model import (
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
from ledger.store.event_log import EventLog
from ledger.store.database import EventStoreApp

DEFAULT_CACHE_SIZE = 250_000
#: [hostile #10] IDs remembered as not existing (look-ups of unknown IDs must not grow memory).
MAX_ABSENT = 10_000

#: Aggregates are cached by natural key, e.g. ("device", "a1b2...") or ("identity", 42).
Key = tuple[str, Any]
_TO_UUID = {"device": device_key, "user": user_key, "identity": identity_key}
ALLOCATOR: Key = ("allocator", None)


def aggregate_id(key: Key) -> UUID:
    kind, value = key
    return ALLOCATOR_KEY if kind == "allocator" else _TO_UUID[kind](value)


class AggregateCache:
    """A least-recently-used map of live aggregates, plus what is known not to exist yet."""

    def __init__(self, log: EventLog, maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        self.log = log
        self.maxsize = maxsize
        self._items: OrderedDict[Key, JournaledAggregate] = OrderedDict()
        self._keys: dict[UUID, Key] = {}
        self._absent: set[Key] = set()

    def get(self, key: Key) -> Any:
        """The aggregate under this key, loading it if needed; None if it does not exist."""
        aggregate = self._items.get(key)
        if aggregate is not None:
            self._items.move_to_end(key)
            return aggregate
        if key in self._absent:
            return None
        self.prefetch([key])
        return self._items.get(key)

    def prefetch(self, keys: Iterable[Key]) -> None:
        """Load every missing aggregate of `keys` in bulk; remember which do not exist."""
        missing = {aggregate_id(key): key for key in keys if key not in self._items and key not in self._absent}
        if ALLOCATOR_KEY in missing:
            self._put_or_absent(ALLOCATOR, self._load_allocator())
            del missing[ALLOCATOR_KEY]
        found = self.log.events_by_aggregate(missing) if missing else {}
        for originator_id, key in missing.items():
            aggregate = None
            for event in found.get(originator_id, ()):
                aggregate = event.mutate(aggregate)
            self._put_or_absent(key, aggregate)

    def _put_or_absent(self, key: Key, aggregate: JournaledAggregate | None) -> None:
        if aggregate is None:
            if len(self._absent) >= min(self.maxsize, MAX_ABSENT):  # [hostile #10]
                self._absent.clear()
            self._absent.add(key)
        else:
            self.put(key, aggregate)

    def _load_allocator(self) -> AmplitudeIds | None:
        """Only the allocator's last event matters: it carries the whole state."""
        last = self.log.last_event(ALLOCATOR_KEY)
        if last is None:
            return None
        allocator = AmplitudeIds.__new__(AmplitudeIds)
        allocator.__base_init__(originator_id=ALLOCATOR_KEY, originator_version=last.originator_version,
                                timestamp=last.timestamp)
        AmplitudeIds.__init__(allocator)
        last.apply(allocator)
        return allocator

    def put(self, key: Key, aggregate: JournaledAggregate) -> None:
        items = self._items
        items[key] = aggregate
        items.move_to_end(key)
        self._keys[aggregate.id] = key
        self._absent.discard(key)
        while len(items) > self.maxsize:
            _, evicted = items.popitem(last=False)
            del self._keys[evicted.id]

    def evict(self, originator_ids: Iterable[UUID]) -> None:
        """Forget these aggregates (changed elsewhere, or by a failed request)."""
        for originator_id in originator_ids:
            key = self._keys.pop(originator_id, None)
            if key is not None:
                del self._items[key]

    def forget_absent(self) -> None:
        """What did not exist a moment ago may exist now (another writer): ask again next time."""
        self._absent.clear()


class UnitOfWork:
    """Collects one request's changes, in the order they happened, for one atomic save."""

    def __init__(self, cache: AggregateCache, app: EventStoreApp, server_time: int) -> None:
        self.cache = cache
        self.app = app
        self.server_time = server_time
        self.touched: dict[Key, JournaledAggregate] = {}
        self.created: list[tuple[Key, JournaledAggregate]] = []
        self.events: list[Any] = []
        self._issued = 0

    def prefetch(self, calls: list[Call]) -> None:
        """Load, in bulk, every aggregate resolving these calls can read."""
        cache = self.cache
        first = {("device", call.device_id) for call in calls} | {("user", call.user_id) for call in calls
                                                                   if call.user_id is not None}
        cache.prefetch(first)
        identities: set[Key] = {ALLOCATOR}
        for key in first:
            aggregate = cache.get(key)
            if aggregate is not None:
                identities.add(("identity", aggregate.pointer if key[0] == "device" else aggregate.amplitude_id))
        cache.prefetch(identities)

    def _get(self, key: Key) -> Any:
        aggregate = self.touched.get(key)
        if aggregate is None:
            aggregate = self.cache.get(key)
            if aggregate is not None:
                self._enlist(key, aggregate)
        return aggregate

    def _enlist(self, key: Key, aggregate: JournaledAggregate) -> None:
        """From now on the aggregate's new events go to this request's journal, in order."""
        self.touched[key] = aggregate
        self.events.extend(aggregate.pending_events)
        aggregate.journal = self.events

    # The `Aggregates` protocol of ledger.resolution.
    def device(self, device_id: str) -> Device | None:
        return self._get(("device", device_id))

    def user(self, user_id: str) -> User | None:
        return self._get(("user", user_id))

    def identity(self, amplitude_id: int) -> Identity:
        identity = self._get(("identity", amplitude_id))
        if identity is None:
            raise LookupError(f"amplitude ID {amplitude_id} is referenced but was never created")
        return identity

    def new_identity(self, cause: Cause) -> Identity:
        allocator = self._allocator()
        amplitude_id = allocator.next_amplitude_id + self._issued
        self._issued += 1
        identity = Identity.create(amplitude_id, cause)
        self._create(("identity", amplitude_id), identity)
        return identity

    def add(self, aggregate: Device | User) -> None:
        key: Key = ("device", aggregate.device_id) if isinstance(aggregate, Device) else ("user", aggregate.user_id)
        self._create(key, aggregate)

    def _create(self, key: Key, aggregate: JournaledAggregate) -> None:
        self.created.append((key, aggregate))
        self._enlist(key, aggregate)

    def _allocator(self) -> AmplitudeIds:
        allocator = self._get(ALLOCATOR)
        if allocator is None:
            allocator = AmplitudeIds.start(self.server_time)
            self._create(ALLOCATOR, allocator)
        return allocator

    def commit(self) -> list[tuple[int, Any]]:
        """Store every event in one transaction; returns (position, event) pairs in log order.

        The cache then holds the new state.
        """
        if self._issued:
            self._allocator().reserve(self._issued, self.server_time)
            self._issued = 0
        try:
            to_stored = self.app.mapper.to_stored_event
            stored = [to_stored(event) for event in self.events]
            positions = self.app.recorder.insert_events(stored) if stored else []
        except BaseException:
            self.discard()
            raise
        for aggregate in self.touched.values():
            aggregate.pending_events.clear()  # stored: no longer pending
            aggregate.journal = None
        for key, aggregate in self.created:  # the others came from the cache
            self.cache.put(key, aggregate)
        return list(zip(positions or [], self.events))

    def discard(self) -> None:
        """Forget uncommitted changes: drop every touched aggregate from the cache."""
        for aggregate in self.touched.values():
            aggregate.journal = None
        self.cache.evict(aggregate.id for aggregate in self.touched.values())
        self.touched.clear()
        self.created.clear()
        self.events.clear()
