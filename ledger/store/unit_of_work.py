"""One request's view of the aggregates: a bounded cache in front of the event store.

The hot path never reads the database per call: before a request is resolved, every
aggregate it can touch, the last versions of the timelines it appends to and the
receipts of its insert_ids are fetched in a few bulk queries (`prefetch`), and the
cache is trusted inside the process. The store's unique keys catch any staleness at
commit time (`Conflict`). A failed or abandoned unit of work evicts everything it
touched, so the cache only ever holds committed state.

Tracked events never become event objects: `append` keeps their state, and `commit`
encodes it straight into a log row (the per-event object machinery was most of the
ingest time; see docs/architecture.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, cast
from uuid import UUID

import msgspec

from ledger.domain.calls import Call
from ledger.domain.groups import group_identify_sender, group_key
from ledger.domain.keys import Keys
from ledger.domain.model import (
    ALLOCATOR_KEY,
    AmplitudeIdentity,
    AmplitudeIds,
    Cause,
    Correction,
    Device,
    Group,
    JournaledAggregate,
    User,
    UserMapping,
    identity_key,
)
from ledger.domain.timeline import Timeline
from ledger.store.database import MsgspecMapper
from ledger.store.event_log import EventLog
from ledger.store.writer import COPY_FROM, RECEIPTS, Conflict, Row, Transaction

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
        self._to_uuid = {"device": keys.device, "user": keys.user, "identity": identity_key,
                         "mapping": keys.mapping, "group": lambda key: group_key(*key)}

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


class _Appended:
    """A timeline event in waiting: its log row but for the encoding."""

    __slots__ = ("state", "stream", "topic", "version")

    def __init__(self, stream: UUID, version: int, topic: str, state: dict[str, Any]) -> None:
        self.stream = stream
        self.version = version
        self.topic = topic
        self.state = state


_encode = msgspec.msgpack.Encoder().encode
_mapper = MsgspecMapper(transcoder=None)  # type: ignore[arg-type]  # it encodes with msgspec itself


class UnitOfWork:
    """Collects one request's changes, in the order they happened, for one atomic save."""

    def __init__(self, cache: AggregateCache, server_time: int) -> None:
        self.cache = cache
        self.keys = cache.keys
        self.server_time = server_time
        self.touched: dict[Key, JournaledAggregate] = {}
        self.created: list[tuple[Key, JournaledAggregate]] = []
        self.events: list[Any] = []
        self._issued = 0
        self._heads: dict[UUID, int] = {}
        self._receipts: dict[bytes, int] = {}
        self._received: dict[bytes, int] = {}
        #: The first and last log positions stored by `commit` ((0, 0): none).
        self.span = (0, 0)
        self._keys: dict[tuple[str, str], bytes] = {}
        self._streams: dict[tuple[type[Any], int], UUID] = {}

    def prefetch(self, calls: list[Call]) -> None:
        """Load, in bulk, every aggregate, stream head and receipt resolving these calls can read."""
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
        # Through `_stream`: each stream ID is made once per unit (a UUID costs microseconds), here.
        cache.load_heads(self._stream(kind, key[1]) for key in identities if key[0] == "identity"
                         for kind in (Timeline.Tracked, Timeline.Identified))
        # A device the store does not hold has no receipts: its calls were never stored (a
        # concurrent writer storing one would also create the device, and our commit would conflict).
        # A `$groupidentify` call creates no device: its receipts, under a name of their own, are asked for.
        keys = self._keys
        receipt = self.keys.receipt
        for call in calls:
            if call.insert_id is None:
                continue
            if call.is_group_identify:
                sender = group_identify_sender(call.device_id)
                keys[sender, call.insert_id] = receipt(sender, call.insert_id)
            elif cache.get(("device", call.device_id)) is not None:
                keys[call.device_id, call.insert_id] = receipt(call.device_id, call.insert_id)
        self._receipts = cache.log.receipts(set(keys.values()))

    def _key(self, device_id: str, insert_id: str) -> bytes:
        """A call's receipt key: asked twice per call (`last_received`, `append`), an HMAC made once."""
        key = self._keys.get((device_id, insert_id))
        if key is None:
            key = self._keys[device_id, insert_id] = self.keys.receipt(device_id, insert_id)
        return key

    def _stream(self, kind: type[Any], amplitude_id: int) -> UUID:
        stream = self._streams.get((kind, amplitude_id))
        if stream is None:
            stream = self._streams[kind, amplitude_id] = Timeline.stream(kind, amplitude_id)
        return stream

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

    def group(self, group_type: str, group_value: str) -> Group | None:
        return self._get(("group", (group_type, group_value)))

    def mapping(self, user_id: str) -> UserMapping | None:
        return self._get(("mapping", user_id))

    def identity(self, amplitude_id: int) -> AmplitudeIdentity:
        identity = self._get(("identity", amplitude_id))
        if identity is None:
            raise LookupError(f"amplitude ID {amplitude_id} is referenced but was never created")
        return identity

    def allocate(self) -> int:
        """A new amplitude ID, reserved when the unit is committed."""
        amplitude_id = self._allocator().next_amplitude_id + self._issued
        self._issued += 1
        return amplitude_id

    def new_identity(self, cause: Cause) -> AmplitudeIdentity:
        amplitude_id = self.allocate()
        identity = AmplitudeIdentity.create(amplitude_id, cause)
        self._create(("identity", amplitude_id), identity)
        for kind in (Timeline.Tracked, Timeline.Identified):
            self._heads[self._stream(kind, amplitude_id)] = 0
        return identity

    def last_received(self, device_id: str, insert_id: str) -> int | None:
        key = self._key(device_id, insert_id)
        received = self._received.get(key)
        return self._receipts.get(key) if received is None else received

    def append(self, kind: type[Any], amplitude_id: int, state: dict[str, Any]) -> None:
        stream = self._stream(kind, amplitude_id)
        version = self._heads.get(stream)
        if version is None:
            version = self.cache.heads.get(stream)
            if version is None:
                self.cache.load_heads([stream])
                version = self.cache.heads[stream]
        self._heads[stream] = version = version + 1
        self.events.append(_Appended(stream, version, kind.TOPIC, state))
        insert_id = state["insert_id"]
        if insert_id is not None:
            self.receive(state["device_id"], insert_id, state["server_time"])

    def receive(self, device_id: str, insert_id: str, server_time: int) -> None:
        self._received[self._key(device_id, insert_id)] = server_time

    def add(self, aggregate: Device | User | AmplitudeIdentity | Correction | Group | UserMapping) -> None:
        """A new aggregate, stored with the unit (an identity made by a correction, the correction itself)."""
        key: Key
        if isinstance(aggregate, Device):
            key = ("device", aggregate.device_id)
        elif isinstance(aggregate, User):
            key = ("user", aggregate.user_id)
        elif isinstance(aggregate, AmplitudeIdentity):
            key = ("identity", aggregate.amplitude_id)
        elif isinstance(aggregate, (Group, UserMapping)):
            key = aggregate.cache_key
        else:
            key = ("correction", aggregate.id)
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

    def commit(self, tx: Transaction) -> list[tuple[int, str, dict[str, Any]]]:
        """Store every event and receipt in the open transaction.

        Returns the identity facts as (position, topic, fields), in log order, for the read side.
        Call `committed` once the transaction is committed.
        """
        if self._issued:
            self._allocator().reserve(self._issued, self.server_time)
            self._issued = 0
        rows: list[Row] = []
        for event in self.events:
            if type(event) is _Appended:
                rows.append((event.stream, event.version, event.topic, _encode(event.state)))
            else:
                stored = _mapper.to_stored_event(event)
                rows.append((cast(UUID, stored.originator_id), stored.originator_version, stored.topic, stored.state))
        positions = tx.insert_events(rows)
        if positions:
            self.span = (positions[0], positions[-1])
        self._store_receipts(tx)
        return [(position, row[2], event.__dict__) for position, row, event in zip(positions, rows, self.events, strict=True)
                if type(event) is not _Appended]

    def _store_receipts(self, tx: Transaction) -> None:
        """New keys are inserted (a concurrent writer's insert makes ours conflict); expired ones renewed."""
        fresh = [(key, time) for key, time in self._received.items() if key not in self._receipts]
        if tx.copy is not None and len(fresh) >= COPY_FROM:
            tx.copy(RECEIPTS, ("key", "server_time"), fresh)
        else:
            tx.executemany(f"INSERT INTO {RECEIPTS} (key, server_time) VALUES (?, ?)", fresh)
        for key, time in self._received.items():
            if key in self._receipts:
                tx.execute(f"UPDATE {RECEIPTS} SET server_time = ? WHERE key = ? AND server_time = ?",
                           (time, key, self._receipts[key]))
                if tx.changed() != 1:
                    raise Conflict("a receipt changed meanwhile")

    def committed(self) -> None:
        """The transaction is committed: the cache now holds the new state."""
        for aggregate in self.touched.values():
            aggregate.pending_events.clear()  # stored: no longer pending
            aggregate.journal = None
        for key, aggregate in self.created:  # the others came from the cache
            self.cache.put(key, aggregate)
        for stream, version in self._heads.items():
            self.cache.put_head(stream, version)

    def discard(self) -> None:
        """Forget uncommitted changes: drop every touched aggregate and stream from the cache."""
        for aggregate in self.touched.values():
            aggregate.journal = None
        self.cache.evict([*(aggregate.id for aggregate in self.touched.values()), *self._heads])
        self.touched.clear()
        self.created.clear()
        self.events.clear()
        self._heads.clear()
        self._received.clear()
