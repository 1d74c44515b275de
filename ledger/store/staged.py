"""What one unit of work changed, in the order it happened, until it is stored or discarded.

Tracked events never become event objects: the unit keeps their state (`Appended`), and
`Staged.store` encodes it straight into a log row (the per-event object machinery was most of
the ingest time; see docs/architecture.md).
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import msgspec

from ledger.domain.model import JournaledAggregate
from ledger.domain.timeline import Timeline
from ledger.store.aggregate_cache import AggregateCache, Key
from ledger.store.database import MsgspecMapper
from ledger.store.writer import Row, Transaction

#: An identity fact as the read side gets it: (position, topic, fields).
Fact = tuple[int, str, dict[str, Any]]


class Appended:
    """A timeline event in waiting: its log row but for the encoding."""

    __slots__ = ("state", "stream", "topic", "version")

    def __init__(self, stream: UUID, version: int, topic: str, state: dict[str, Any]) -> None:
        self.stream = stream
        self.version = version
        self.topic = topic
        self.state = state


_encode = msgspec.msgpack.Encoder().encode
_mapper = MsgspecMapper(transcoder=None)  # type: ignore[arg-type]  # it encodes with msgspec itself


class Staged:
    """The aggregates a unit touched or made, its events in order, and the heads of the streams it appends to."""

    def __init__(self, cache: AggregateCache) -> None:
        self._cache = cache
        self.touched: dict[Key, JournaledAggregate] = {}
        self.created: list[tuple[Key, JournaledAggregate]] = []
        self.events: list[Any] = []
        #: The last version of each stream this unit appends to.
        self.heads: dict[UUID, int] = {}
        self._streams: dict[tuple[type[Any], int], UUID] = {}

    def get(self, key: Key) -> Any:
        aggregate = self.touched.get(key)
        if aggregate is None:
            aggregate = self._cache.get(key)
            if aggregate is not None:
                self.enlist(key, aggregate)
        return aggregate

    def enlist(self, key: Key, aggregate: JournaledAggregate) -> None:
        """From now on the aggregate's new events go to this request's journal, in order."""
        self.touched[key] = aggregate
        self.events.extend(aggregate.pending_events)
        aggregate.journal = self.events

    def create(self, key: Key, aggregate: JournaledAggregate) -> None:
        self.created.append((key, aggregate))
        self.enlist(key, aggregate)

    def stream(self, kind: type[Any], amplitude_id: int) -> UUID:
        """Each stream ID is made once per unit (a UUID costs microseconds)."""
        stream = self._streams.get((kind, amplitude_id))
        if stream is None:
            stream = self._streams[kind, amplitude_id] = Timeline.stream(kind, amplitude_id)
        return stream

    def store(self, tx: Transaction) -> tuple[list[int], list[Fact]]:
        """Insert every event in the open transaction: their positions, and the identity facts in log order."""
        rows: list[Row] = []
        for event in self.events:
            if type(event) is Appended:
                rows.append((event.stream, event.version, event.topic, _encode(event.state)))
            else:
                stored = _mapper.to_stored_event(event)
                rows.append((cast(UUID, stored.originator_id), stored.originator_version, stored.topic, stored.state))
        positions = tx.insert_events(rows)
        return positions, [(position, row[2], event.__dict__)
                           for position, row, event in zip(positions, rows, self.events, strict=True)
                           if type(event) is not Appended]

    def committed(self) -> None:
        """The transaction is committed: the cache now holds the new state."""
        for aggregate in self.touched.values():
            aggregate.pending_events.clear()  # stored: no longer pending
            aggregate.journal = None
        for key, aggregate in self.created:  # the others came from the cache
            self._cache.put(key, aggregate)
        for stream, version in self.heads.items():
            self._cache.put_head(stream, version)

    def discard(self) -> None:
        """Forget uncommitted changes: drop every touched aggregate and stream from the cache."""
        for aggregate in self.touched.values():
            aggregate.journal = None
        self._cache.evict([*(aggregate.id for aggregate in self.touched.values()), *self.heads])
        self.touched.clear()
        self.created.clear()
        self.events.clear()
        self.heads.clear()
