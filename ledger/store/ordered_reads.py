"""The log in order: identity facts for replay, every event for export, events by position or stream.

For the projections' catch-up and rebuild (`read`: tracked events are skipped in SQL, never
decoded), followers of other writers (`originators`), the portable history (`page`,
`streams_until`), corrections (`calls_of`) and time travel (`first_time`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from ledger.domain.timeline import Timeline
from ledger.store.database import Store, canonical_topic, decode_state
from ledger.store.log_table import IN_CHUNK, TIMELINE_TOPICS, DecodedRow, LogTable


class OrderedReads(LogTable):
    """Pages of the log in position order, and the events of given streams."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        table, position, within = self._table, self._position, self._within
        self._facts = sa.text(
            f"SELECT {position}, topic, state FROM {table} WHERE {position} > :start AND {position} <= :stop "
            f"AND topic NOT IN ('{TIMELINE_TOPICS[0]}', '{TIMELINE_TOPICS[1]}') ORDER BY {position} LIMIT :limit"
        )
        self._calls = sa.text(
            f"SELECT {position}, originator_id, topic, state FROM {table} WHERE originator_id IN :ids "
            f"AND {within} <= :stop").bindparams(sa.bindparam("ids", expanding=True))
        self._everything = sa.text(
            f"SELECT {position}, originator_id, topic, state FROM {table} "
            f"WHERE {position} > :after AND {position} <= :stop ORDER BY {position} LIMIT :limit")
        self._page_ids = sa.text(
            f"SELECT {position}, originator_id FROM {table} "
            f"WHERE {position} > :start AND {position} <= :stop ORDER BY {position} LIMIT :limit"
        )
        self._from = sa.text(f"SELECT {position}, topic, state FROM {table} WHERE {position} >= :start "
                             f"AND {position} <= :stop ORDER BY {position} LIMIT 64")

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

    def calls_of(self, amplitude_ids: Iterable[int], stop: int) -> list[DecodedRow]:
        """Every call stored on these amplitude IDs' timelines (tracked events and identify calls), in log order."""
        return self.streams_until([Timeline.stream(kind, amplitude_id) for amplitude_id in amplitude_ids
                                   for kind in (Timeline.Tracked, Timeline.Identified)], stop)

    def streams_until(self, originator_ids: Iterable[UUID], stop: int) -> list[DecodedRow]:
        """Every event of these streams up to position `stop`, decoded as `at` does, in log order."""
        streams = [self._param(originator_id) for originator_id in originator_ids]
        found = []
        with self.engine.connect() as connection:
            for start in range(0, len(streams), IN_CHUNK):
                found.extend(self._decoded(connection.execute(
                    self._calls, {"ids": streams[start:start + IN_CHUNK], "stop": stop})))
        return sorted(found, key=lambda row: row[0])

    def page(self, *, after: int, stop: int, limit: int) -> list[DecodedRow]:
        """Every stored event with after < position <= stop, decoded as `at` does, a page in log order."""
        with self.engine.connect() as connection:
            return self._decoded(connection.execute(self._everything, {"after": after, "stop": stop, "limit": limit}))
