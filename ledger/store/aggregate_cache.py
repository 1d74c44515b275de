"""The aggregates the write path trusts: a bounded cache in front of the event store.

It holds only committed state (a unit of work that fails evicts what it touched) and what is
known not to exist yet, so the hot path never reads the database per call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from ledger.domain.groups import group_key
from ledger.domain.keys import Keys
from ledger.domain.model import ALLOCATOR_KEY, AmplitudeIds, JournaledAggregate, identity_key
from ledger.store.event_log import EventLog

DEFAULT_CACHE_SIZE = 250_000
#: IDs remembered as not existing (look-ups of unknown IDs must not grow memory).
MAX_ABSENT = 10_000

#: Aggregates are cached by natural key, e.g. ("device", "a1b2...") or ("identity", 42).
Key = tuple[str, Any]
ALLOCATOR: Key = ("allocator", None)


class AggregateCache:
    """A least-recently-used map of live aggregates, plus what is known not to exist yet.

    `keys` derives the stored IDs of devices and users (keyed by the ledger's secret).
    """

    def __init__(self, log: EventLog, keys: Keys, maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        self.log = log
        self.use_keys(keys)
        self.maxsize = maxsize
        self._items: OrderedDict[Key, JournaledAggregate | _Missing] = OrderedDict()
        self._keys: dict[UUID, Key] = {}
        self._absent: set[Key] = set()
        #: The last stored version of recently used timeline streams.
        self.heads: OrderedDict[UUID, int] = OrderedDict()

    def get(self, key: Key) -> Any:
        """The aggregate under this key, loading it if needed; None if it does not exist."""
        aggregate = self._items.get(key)
        if aggregate is not None:
            self._items.move_to_end(key)
        elif key not in self._absent:
            self.prefetch([key])
            aggregate = self._items.get(key)
        return None if type(aggregate) is _Missing else aggregate

    def prefetch(self, keys: Iterable[Key]) -> None:
        """Load every missing aggregate of `keys` in bulk; remember which do not exist."""
        missing = {self.aggregate_id(key): key for key in keys if key not in self._items and key not in self._absent}
        if ALLOCATOR_KEY in missing:
            self._put_or_absent(ALLOCATOR, self._load_allocator())
            del missing[ALLOCATOR_KEY]
        found = self.log.events_by_aggregate(missing) if missing else {}
        for originator_id, key in missing.items():
            aggregate = None
            for event in found.get(originator_id, ()):
                aggregate = event.mutate(aggregate)
            self._put_or_absent(key, aggregate)

    def aggregate_id(self, key: Key) -> UUID:
        kind, value = key
        return ALLOCATOR_KEY if kind == "allocator" else self._to_uuid[kind](value)

    def use_keys(self, keys: Keys) -> None:
        """Derive stored IDs with `keys` from now on (a new ledger, or one just rekeyed: clear first)."""
        self.keys = keys
        self._to_uuid: dict[str, Callable[[Any], UUID]] = {
            "device": keys.device, "user": keys.user, "identity": identity_key, "mapping": keys.mapping,
            "group": lambda key: group_key(*key)}

    def clear(self) -> None:
        """Forget everything (a deletion job rewrote streams in place)."""
        self._items.clear()
        self._keys.clear()
        self._absent.clear()
        self.heads.clear()

    def _put_or_absent(self, key: Key, aggregate: JournaledAggregate | None) -> None:
        if aggregate is None and key[0] == "mapping":
            # Asked at every resolve of a known user: cached like an aggregate (evicted when another writer starts it).
            self.put(key, _Missing(self.aggregate_id(key)))
        elif aggregate is None:
            if len(self._absent) >= min(self.maxsize, MAX_ABSENT):  # look-ups of unknown IDs must not grow memory
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

    def put(self, key: Key, aggregate: JournaledAggregate | _Missing) -> None:
        items = self._items
        items[key] = aggregate
        items.move_to_end(key)
        self._keys[aggregate.id] = key
        self._absent.discard(key)
        while len(items) > self.maxsize:
            _, evicted = items.popitem(last=False)
            del self._keys[evicted.id]

    def evict(self, originator_ids: Iterable[UUID]) -> None:
        """Forget these aggregates and streams (changed elsewhere, or by a failed request)."""
        for originator_id in originator_ids:
            key = self._keys.pop(originator_id, None)
            if key is not None:
                del self._items[key]
            self.heads.pop(originator_id, None)

    def put_head(self, stream: UUID, version: int) -> None:
        heads = self.heads
        heads[stream] = version
        heads.move_to_end(stream)
        while len(heads) > self.maxsize:
            heads.popitem(last=False)

    def load_heads(self, streams: Iterable[UUID]) -> None:
        """Fetch the last versions of the streams not in the cache (0 for a stream not started)."""
        missing = [stream for stream in streams if stream not in self.heads]
        if missing:
            found = self.log.heads(missing)
            for stream in missing:
                self.put_head(stream, found.get(stream, 0))

    def forget_absent(self) -> None:
        """What did not exist a moment ago may exist now (another writer): ask again next time."""
        self._absent.clear()


class _Missing:
    """What the cache holds for a mapping stream that does not exist (`AggregateCache._put_or_absent`)."""

    __slots__ = ("id",)

    def __init__(self, originator_id: UUID) -> None:
        self.id = originator_id
