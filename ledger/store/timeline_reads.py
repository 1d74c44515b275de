"""The timelines: pages of tracked events read straight from the store's (originator_id, version) index.

What `projections.timeline.TimelineLog` and the read API ask for; a page reads each stream from
its newest (or oldest) end, in the backend's fastest plan (`Backend.stream_reads`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from ledger.domain.model import Device
from ledger.domain.timeline import Timeline
from ledger.store.database import Store, decode_state
from ledger.store.log_table import LogTable

#: (position, original amplitude ID, the event's stored fields): one tracked event as readers see it.
TrackedRow = tuple[int, int, dict[str, Any]]
#: Tracked events as stored: today's, and 0.1.0's under both of the names it may have.
_TRACKED_TOPICS = (Timeline.Tracked.TOPIC, Device.Tracked.TOPIC, "ledger.domain:" + Device.Tracked.TOPIC)


class TimelineReads(LogTable):
    """Tracked events by amplitude ID (their streams) or in log order, and their counts."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        table, position, within = self._table, self._position, self._within
        # One query per page of timeline streams, the backend's fastest plan (`StreamReads`).
        self._streams = store.backend.stream_reads(table)
        self._streams_count = sa.text(
            f"SELECT COUNT(*) FROM {table} WHERE originator_id IN :ids AND {within} <= :stop"
        ).bindparams(sa.bindparam("ids", expanding=True))
        self._tracked = sa.text(
            f"SELECT {position}, originator_id, topic, state FROM {table} WHERE {position} > :after "
            f"AND {position} <= :stop AND topic IN ({', '.join(repr(topic) for topic in _TRACKED_TOPICS)}) "
            f"ORDER BY {position} LIMIT :limit")
        tracked_streams = (self._param(Timeline.stream(Timeline.Tracked, 0)),
                           self._param(Timeline.stream(Timeline.Tracked, 2**64 - 1)))
        self._tracked_counts = sa.text(
            f"SELECT originator_id, COUNT(*) FROM {table} WHERE originator_id BETWEEN :low AND :high "
            f"AND {position} <= :stop GROUP BY originator_id").bindparams(low=tracked_streams[0],
                                                                         high=tracked_streams[1])

    def stream_page(self, connection: sa.Connection, amplitude_ids: list[int], *, after: int, stop: int,
                    limit: int, newest_first: bool) -> list[TrackedRow]:
        """The tracked events stored under these amplitude IDs, in log order or reversed: one index range each.

        Each stream gives at most `limit` rows in order (its versions follow the log); merged in log order.
        Read on the caller's connection when it is the store's (see `_on`).
        """
        streams = {self._param(Timeline.stream(Timeline.Tracked, amplitude_id)): amplitude_id
                   for amplitude_id in amplitude_ids}
        with self._on(connection) as connection:
            found = self._streams.pages(connection, list(streams), after=after, stop=stop, limit=limit,
                                        newest_first=newest_first)
        pages = [[(row[0], streams[stream], row[1]) for row in rows] for stream, rows in found.items()]
        merged = heapq.merge(*pages, key=lambda row: row[0], reverse=newest_first)
        return [(position, amplitude_id, decode_state(Timeline.Tracked.TOPIC, state))
                for position, amplitude_id, state in itertools.islice(merged, limit)]

    def stream_count(self, connection: sa.Connection, amplitude_ids: list[int], stop: int) -> int:
        streams = [self._param(Timeline.stream(Timeline.Tracked, amplitude_id)) for amplitude_id in amplitude_ids]
        with self._on(connection) as connection:
            return int(connection.execute(self._streams_count, {"ids": streams, "stop": stop}).scalar() or 0)

    @contextmanager
    def _on(self, connection: sa.Connection) -> Iterator[sa.Connection]:
        """The caller's connection if it reaches this store (a checkout fewer: on PostgreSQL a ping
        and a rollback), else one of the store's own: an `as_of` view reads its projections from
        a scratch database and the log from here."""
        if connection.engine is self.engine:
            yield connection
        else:
            with self.engine.connect() as own:
                yield own

    def tracked_at(self, positions: list[int]) -> list[TrackedRow]:
        """The tracked events (either shape) at these positions, in log order."""
        return [(position, original, fields) for position, original, _, fields in self.at(positions)]

    def tracked(self, *, after: int, stop: int, limit: int) -> list[TrackedRow]:
        """Every tracked event in log order (both shapes), a page at a time."""
        with self.engine.connect() as connection:
            rows = connection.execute(self._tracked, {"after": after, "stop": stop, "limit": limit}).all()
        found: list[TrackedRow] = []
        for position, originator_id, topic, state in rows:
            fields = decode_state(topic, state)
            original = (Timeline.amplitude_id(self._uuid(originator_id)) if topic == Timeline.Tracked.TOPIC
                        else fields["amplitude_id"])
            found.append((position, original, fields))
        return found

    def tracked_counts(self, stop: int) -> dict[int, int]:
        """How many tracked events (new shape) each original amplitude ID has, up to `stop`."""
        with self.engine.connect() as connection:
            rows = connection.execute(self._tracked_counts, {"stop": stop}).all()
        return {Timeline.amplitude_id(self._uuid(row[0])): row[1] for row in rows}
