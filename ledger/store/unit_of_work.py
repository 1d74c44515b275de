"""One request's view of the aggregates, over the cache (`aggregate_cache`), for one atomic save.

The hot path never reads the database per call: before a request is resolved, every
aggregate it can touch, the last versions of the timelines it appends to and the
receipts of its insert_ids are fetched in a few bulk queries (`prefetch`), and the
cache is trusted inside the process. The store's unique keys catch any staleness at
commit time (`Conflict`). A failed or abandoned unit of work evicts everything it
touched (`staged`), so the cache only ever holds committed state.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.calls import Call
from ledger.domain.model import (
    AmplitudeIdentity,
    AmplitudeIds,
    Cause,
    Correction,
    Device,
    Group,
    User,
    UserMapping,
)
from ledger.domain.timeline import Timeline
from ledger.store.aggregate_cache import ALLOCATOR, AggregateCache, Key
from ledger.store.receipts import Receipts
from ledger.store.staged import Appended, Fact, Staged
from ledger.store.writer import Transaction


class UnitOfWork:
    """Collects one request's changes, in the order they happened, for one atomic save.

    Its receipts (`receipts.Receipts`) and its staged changes (`staged.Staged`) are collaborators;
    their hot methods are bound here once, so a call costs no more than a method of this class.
    """

    def __init__(self, cache: AggregateCache, server_time: int) -> None:
        self.cache = cache
        self.keys = cache.keys
        self.server_time = server_time
        self._issued = 0
        #: The first and last log positions stored by `commit` ((0, 0): none).
        self.span = (0, 0)
        self._receipts = receipts = Receipts(self.keys)
        self.last_received = receipts.last_received
        self.receive = receipts.receive
        self._staged = staged = Staged(cache)
        self.events = staged.events
        self._heads = staged.heads
        self._get = staged.get
        self._stream = staged.stream

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
        cache.load_heads(self._stream(kind, key[1]) for key in identities if key[0] == "identity"
                         for kind in (Timeline.Tracked, Timeline.Identified))
        self._receipts.prefetch(calls, cache)

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
        self._staged.create(("identity", amplitude_id), identity)
        for kind in (Timeline.Tracked, Timeline.Identified):
            self._heads[self._stream(kind, amplitude_id)] = 0
        return identity

    def append(self, kind: type[Any], amplitude_id: int, state: dict[str, Any]) -> None:
        stream = self._stream(kind, amplitude_id)
        version = self._heads.get(stream)
        if version is None:
            version = self.cache.heads.get(stream)
            if version is None:
                self.cache.load_heads([stream])
                version = self.cache.heads[stream]
        self._heads[stream] = version = version + 1
        self.events.append(Appended(stream, version, kind.TOPIC, state))
        insert_id = state["insert_id"]
        if insert_id is not None:
            self.receive(state["device_id"], insert_id, state["server_time"])

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
        self._staged.create(key, aggregate)

    def _allocator(self) -> AmplitudeIds:
        allocator = self._get(ALLOCATOR)
        if allocator is None:
            allocator = AmplitudeIds.start(self.server_time)
            self._staged.create(ALLOCATOR, allocator)
        return allocator

    def commit(self, tx: Transaction) -> list[Fact]:
        """Store every event and receipt in the open transaction.

        Returns the identity facts as (position, topic, fields), in log order, for the read side.
        Call `committed` once the transaction is committed.
        """
        if self._issued:
            self._allocator().reserve(self._issued, self.server_time)
            self._issued = 0
        positions, facts = self._staged.store(tx)
        if positions:
            self.span = (positions[0], positions[-1])
        self._receipts.store(tx)
        return facts

    def committed(self) -> None:
        """The transaction is committed: the cache now holds the new state."""
        self._staged.committed()

    def discard(self) -> None:
        """Forget uncommitted changes: drop every touched aggregate and stream from the cache."""
        self._staged.discard()
        self._receipts.discard()
