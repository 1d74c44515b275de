"""The log's table as every reader of it sees it: its name, position column, stream ID encoding, decoding.

`ledger.store.event_log.EventLog` is the readers together; each group of callers has its own
module: the write path's (`write_reads`), the log in order (`ordered_reads`: replay, export,
corrections, followers, time travel), the timelines (`timeline_reads`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from ledger.domain.timeline import Timeline
from ledger.store.database import Store, canonical_topic, decode_state

#: (position, original amplitude ID, topic, the event's stored fields): one event as readers see it.
DecodedRow = tuple[int, int, str, dict[str, Any]]
TIMELINE_TOPICS = (Timeline.Tracked.TOPIC, Timeline.Identified.TOPIC)
_LOW_64 = 2**64 - 1
#: Values per statement of the reads through SQLAlchemy's expanding parameters (SQLite allows 32766).
IN_CHUNK = 900


class LogTable:
    """One store's events table: what its readers share."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self._backend = store.backend
        self._table = store.events_table
        self._position = position = store.backend.position
        # Bounds on the position of a stream's rows are checked on the rows its (originator_id,
        # version) index gives, never looked up in the position index (`+ 0` hides it): without
        # fresh statistics PostgreSQL otherwise ANDs a bitmap of the whole log's positions with
        # the stream's rows, a cost that grows with the log, not with the stream.
        self._within = f"{position} + 0"
        table = self._table
        self._at = sa.text(f"SELECT {position}, originator_id, topic, state FROM {table} "
                           f"WHERE {position} IN :positions").bindparams(sa.bindparam("positions", expanding=True))

    def _param(self, originator_id: UUID) -> Any:
        return self._backend.stream_id(originator_id)

    def _uuid(self, value: Any) -> UUID:
        return value if isinstance(value, UUID) else UUID(hex=value)

    def at(self, positions: Iterable[int]) -> list[DecodedRow]:
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

    def _decoded(self, rows: Iterable[Any]) -> list[DecodedRow]:
        found = []
        for position, originator_id, stored_topic, state in rows:
            topic = canonical_topic(stored_topic)
            fields = decode_state(stored_topic, state)
            # The stream ID's low 64 bits (hex on SQLite: no UUID object per row, a third of a correction's read).
            stream = originator_id.int if isinstance(originator_id, UUID) else int(originator_id, 16)
            original = stream & _LOW_64 if topic in TIMELINE_TOPICS else fields.get("amplitude_id", 0)
            found.append((position, original, topic, fields))
        return found
