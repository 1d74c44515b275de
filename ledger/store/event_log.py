"""Bulk reads of the stored events, straight from eventsourcing's events table.

Reading events back one aggregate or one notification at a time through eventsourcing's
recorder costs a round of Python objects and a transaction each. These reads go through
SQLAlchemy instead: many aggregates in one query before a request, large pages of the
log's identity facts for catch-up and rebuild (tracked events are skipped in SQL, never
decoded), and the timelines straight from the store's (originator_id, version) index.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from ledger.domain.model import Device
from ledger.domain.timeline import Timeline
from ledger.store.database import Store, canonical_topic, decode_event, decode_state
from ledger.store.direct import DirectReads
from ledger.store.writer import APPLIED, RECEIPTS

#: (position, original amplitude ID, the event's stored fields): one tracked event as readers see it.
TrackedRow = tuple[int, int, dict[str, Any]]
_TIMELINE_TOPICS = (Timeline.Tracked.TOPIC, Timeline.Identified.TOPIC)
#: Tracked events as stored: today's, and 0.1.0's under both of the names it may have.
_TRACKED_TOPICS = (Timeline.Tracked.TOPIC, Device.Tracked.TOPIC, "ledger.domain:" + Device.Tracked.TOPIC)

_LOW_64 = 2**64 - 1
#: Values per statement of the reads through SQLAlchemy's expanding parameters (SQLite allows 32766).
IN_CHUNK = 900


class EventLog:
    """Reads of one store's events table, in log order or by aggregate."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        table = store.events_table
        self._backend = store.backend
        position = store.backend.position
        # Bounds on the position of a stream's rows are checked on the rows its (originator_id,
        # version) index gives, never looked up in the position index (`+ 0` hides it): without
        # fresh statistics PostgreSQL otherwise ANDs a bitmap of the whole log's positions with
        # the stream's rows, a cost that grows with the log, not with the stream.
        within = f"{position} + 0"
        columns = "originator_id, originator_version, topic, state"
        # Asked before every request (`_select_in`): on the raw driver, a list of values in one parameter.
        self._by_aggregate = (f"SELECT {columns} FROM {table} WHERE originator_id {{in}} "
                              "ORDER BY originator_id, originator_version")
        self._last_of = sa.text(
            f"SELECT {columns} FROM {table} WHERE originator_id = :id ORDER BY originator_version DESC LIMIT 1"
        )
        self._facts = sa.text(
            f"SELECT {position}, topic, state FROM {table} WHERE {position} > :start AND {position} <= :stop "
            f"AND topic NOT IN ('{_TIMELINE_TOPICS[0]}', '{_TIMELINE_TOPICS[1]}') ORDER BY {position} LIMIT :limit"
        )
        self._heads = (f"SELECT originator_id, MAX(originator_version) FROM {table} "
                       "WHERE originator_id {in} GROUP BY originator_id")
        self._receipts = f"SELECT key, server_time FROM {RECEIPTS} WHERE key {{in}}"
        # One query per page of timeline streams, the backend's fastest plan (`StreamReads`).
        self._streams = store.backend.stream_reads(table)
        self._streams_count = sa.text(
            f"SELECT COUNT(*) FROM {table} WHERE originator_id IN :ids AND {within} <= :stop"
        ).bindparams(sa.bindparam("ids", expanding=True))
        self._at = sa.text(f"SELECT {position}, originator_id, topic, state FROM {table} "
                           f"WHERE {position} IN :positions").bindparams(sa.bindparam("positions", expanding=True))
        self._calls = sa.text(
            f"SELECT {position}, originator_id, topic, state FROM {table} WHERE originator_id IN :ids "
            f"AND {within} <= :stop").bindparams(sa.bindparam("ids", expanding=True))
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
        self._everything = sa.text(
            f"SELECT {position}, originator_id, topic, state FROM {table} "
            f"WHERE {position} > :after AND {position} <= :stop ORDER BY {position} LIMIT :limit")
        self._page_ids = sa.text(
            f"SELECT {position}, originator_id FROM {table} "
            f"WHERE {position} > :start AND {position} <= :stop ORDER BY {position} LIMIT :limit"
        )
        self._from = sa.text(f"SELECT {position}, topic, state FROM {table} WHERE {position} >= :start "
                             f"AND {position} <= :stop ORDER BY {position} LIMIT 64")
        # "Has anything been written?" is asked before every request and query: one statement
        # on a connection of its own, not a checkout of SQLAlchemy's pool (`ledger.store.direct`).
        self._latest_sql = f"SELECT MAX({position}) FROM {table}"
        self._direct = DirectReads(store)

    def _param(self, originator_id: UUID) -> Any:
        return self._backend.stream_id(originator_id)

    def _uuid(self, value: Any) -> UUID:
        return value if isinstance(value, UUID) else UUID(hex=value)

    def latest(self) -> int:
        """The position of the last stored event (0 for an empty ledger)."""
        return int(self._direct.rows(self._latest_sql)[0][0] or 0)

    def close(self) -> None:
        self._direct.close()

    def first_time(self, start: int, stop: int) -> tuple[int, int] | None:
        """The position and server time of the first event with start <= position <= stop that has a
        server time (a call's; a deletion job's bookkeeping has none); None if none has."""
        with self.engine.connect() as connection:
            while start <= stop:
                rows = connection.execute(self._from, {"start": start, "stop": stop}).all()
                for position, topic, state in rows:
                    server_time = decode_state(topic, state).get("server_time")
                    if server_time is not None:
                        return position, server_time
                if not rows:
                    return None
                start = rows[-1][0] + 1
        return None

    def _select_in(self, sql: str, values: list[Any]) -> list[Any]:
        """Rows of `sql` whose `{in}` matches any of `values`, on the direct connection.

        SQLAlchemy's expanding parameters cost more than the query itself for the few
        values a request asks about (`Backend.select_in`: SQLite `IN (?, ...)` in chunks,
        PostgreSQL `= ANY(%s)`, the whole list as one array parameter).
        """
        if not values:
            return []
        return self._backend.select_in(self._direct.rows, sql, values)

    def events_by_aggregate(self, originator_ids: Iterable[UUID]) -> dict[UUID, list[Any]]:
        """Every event of each given aggregate, in version order; absent aggregates are left out."""
        found: dict[UUID, list[Any]] = {}
        for row in self._select_in(self._by_aggregate, [self._param(originator_id) for originator_id in originator_ids]):
            originator_id = self._uuid(row[0])
            found.setdefault(originator_id, []).append(decode_event(row[2], row[3], originator_id, row[1]))
        return found

    def last_event(self, originator_id: UUID) -> Any | None:
        with self.engine.connect() as connection:
            row = connection.execute(self._last_of, {"id": self._param(originator_id)}).first()
        return None if row is None else decode_event(row[2], row[3], originator_id, row[1])

    def read(self, start: int, stop: int, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
        """Up to `limit` identity facts (position, topic, fields) with start < position <= stop, in log order.

        Timeline streams are left out by the query, so a replay never decodes a tracked event.
        """
        with self.engine.connect() as connection:
            rows = connection.execute(self._facts, {"start": start, "stop": stop, "limit": limit}).all()
        return [(row[0], canonical_topic(row[1]), decode_state(row[1], row[2])) for row in rows]

    def originators(self, start: int, stop: int, limit: int) -> list[tuple[int, UUID]]:
        """Which aggregates the events after `start` belong to, without decoding their state."""
        with self.engine.connect() as connection:
            rows = connection.execute(self._page_ids, {"start": start, "stop": stop, "limit": limit}).all()
        return [(row[0], self._uuid(row[1])) for row in rows]

    def heads(self, streams: Iterable[UUID]) -> dict[UUID, int]:
        """The last version of each stream that has one."""
        rows = self._select_in(self._heads, [self._param(stream) for stream in streams])
        return {self._uuid(originator_id): version for originator_id, version in rows}

    def receipts(self, keys: Iterable[bytes]) -> dict[bytes, int]:
        """The server time of the last stored call of each duplicate key that has one."""
        return {bytes(key): server_time for key, server_time in self._select_in(self._receipts, list(keys))}

    def applied(self) -> dict[str, int]:
        """The last message applied from each stream (see `IdentityLedger.ingest(applied=...)`)."""
        with self.engine.connect() as connection:
            return dict(connection.execute(sa.text(f"SELECT stream, sequence FROM {APPLIED}")).all())

    # -- the timelines (what `projections.timeline.TimelineLog` asks for) -------------

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

    def at(self, positions: Iterable[int]) -> list[tuple[int, int, str, dict[str, Any]]]:
        """The events at these positions as (position, original amplitude ID, topic, fields), in log order.

        The original amplitude ID is a timeline event's stream's, or the one a 0.1.0 event names (0 if none).
        """
        positions = list(positions)
        found = []
        with self.engine.connect() as connection:
            for start in range(0, len(positions), IN_CHUNK):
                found.extend(self._decoded(connection.execute(
                    self._at, {"positions": positions[start:start + IN_CHUNK]})))
        return sorted(found, key=lambda row: row[0])

    def calls_of(self, amplitude_ids: Iterable[int], stop: int) -> list[tuple[int, int, str, dict[str, Any]]]:
        """Every call stored on these amplitude IDs' timelines (tracked events and identify calls), in log order."""
        return self.streams_until([Timeline.stream(kind, amplitude_id) for amplitude_id in amplitude_ids
                                   for kind in (Timeline.Tracked, Timeline.Identified)], stop)

    def streams_until(self, originator_ids: Iterable[UUID], stop: int) -> list[tuple[int, int, str, dict[str, Any]]]:
        """Every event of these streams up to position `stop`, decoded as `at` does, in log order."""
        streams = [self._param(originator_id) for originator_id in originator_ids]
        found = []
        with self.engine.connect() as connection:
            for start in range(0, len(streams), IN_CHUNK):
                found.extend(self._decoded(connection.execute(
                    self._calls, {"ids": streams[start:start + IN_CHUNK], "stop": stop})))
        return sorted(found, key=lambda row: row[0])

    def _decoded(self, rows: Iterable[Any]) -> list[tuple[int, int, str, dict[str, Any]]]:
        found = []
        for position, originator_id, stored_topic, state in rows:
            topic = canonical_topic(stored_topic)
            fields = decode_state(stored_topic, state)
            # The stream ID's low 64 bits (hex on SQLite: no UUID object per row, a third of a correction's read).
            stream = originator_id.int if isinstance(originator_id, UUID) else int(originator_id, 16)
            original = stream & _LOW_64 if topic in _TIMELINE_TOPICS else fields.get("amplitude_id", 0)
            found.append((position, original, topic, fields))
        return found

    def page(self, *, after: int, stop: int, limit: int) -> list[tuple[int, int, str, dict[str, Any]]]:
        """Every stored event with after < position <= stop, decoded as `at` does, a page in log order."""
        with self.engine.connect() as connection:
            return self._decoded(connection.execute(self._everything, {"after": after, "stop": stop, "limit": limit}))

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
