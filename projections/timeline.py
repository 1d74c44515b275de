"""Whole-person timelines, read from the log's own index and the merges table.

A tracked event keeps the amplitude ID it got on arrival forever (its "original"); a
merge writes one row in the merges table and moves nothing. A person's timeline is the
union of the streams of their live amplitude ID and of every ID merged into it, merged
in log order here, the way Amplitude maps merged users at query time.
"""

from __future__ import annotations

import heapq
from typing import Any, Iterable, Protocol

import sqlalchemy as sa

from projections import tables as t
from projections.models import TimelineEvent

#: (position, original amplitude ID, the event's stored fields)
TrackedRow = tuple[int, int, dict[str, Any]]
#: No LIMIT: the largest page a query can ask for.
ALL = 2**62


class TimelineLog(Protocol):
    """What the timelines need from the log (implemented by `ledger.store.event_log.EventLog`)."""

    def stream_page(self, amplitude_ids: list[int], *, after: int, stop: int, limit: int,
                    newest_first: bool) -> list[TrackedRow]: ...

    def stream_count(self, amplitude_ids: list[int], stop: int) -> int: ...

    def tracked_at(self, positions: list[int]) -> list[TrackedRow]: ...

    def tracked(self, *, after: int, stop: int, limit: int) -> list[TrackedRow]: ...

    def tracked_counts(self, stop: int) -> dict[int, int]: ...


def person_timeline(connection: sa.Connection, log: TimelineLog, ids: list[int], *, stop: int, after: int,
                    limit: int | None, newest_first: bool) -> list[TimelineEvent]:
    """The tracked events of every amplitude ID in `ids` (the live one first), as the live one's."""
    limit = ALL if limit is None else limit
    pages = [log.stream_page(ids, after=after, stop=stop, limit=limit, newest_first=newest_first)]
    legacy = _legacy_positions(connection, ids, after=after, limit=limit,
                               newest_first=newest_first) if has_legacy(connection) else []
    if legacy:
        pages.append(log.tracked_at(legacy)[::-1] if newest_first else log.tracked_at(legacy))
    rows = heapq.merge(*pages, key=lambda row: row[0], reverse=newest_first)
    return [answer(row, ids[0]) for _, row in zip(range(limit), rows)]


def person_event_count(connection: sa.Connection, log: TimelineLog, ids: list[int], stop: int) -> int:
    legacy = t.legacy_timeline
    old = connection.execute(sa.select(sa.func.count()).where(legacy.c.amplitude_id.in_(ids))).scalar() or 0 \
        if has_legacy(connection) else 0
    return old + log.stream_count(ids, stop)


_ANY_LEGACY = sa.text(f"SELECT 1 FROM {t.legacy_timeline.name} LIMIT 1")


def has_legacy(connection: sa.Connection) -> bool:
    """Whether the ledger holds any tracked event of 0.1.0's shape (one cheap look, usually: none)."""
    return connection.execute(_ANY_LEGACY).first() is not None


def counts_by_original(connection: sa.Connection, log: TimelineLog, stop: int) -> dict[int, int]:
    """How many tracked events each original amplitude ID has."""
    counts = log.tracked_counts(stop)
    legacy = t.legacy_timeline
    for amplitude_id, count in connection.execute(
            sa.select(legacy.c.amplitude_id, sa.func.count()).group_by(legacy.c.amplitude_id)):
        counts[amplitude_id] = counts.get(amplitude_id, 0) + count
    return counts


def answer(row: TrackedRow, live: int) -> TimelineEvent:
    position, original, fields = row
    return TimelineEvent(
        position=position, insert_id=fields["insert_id"], event_type=fields["event_type"],
        time=fields["event_time"], server_time=fields["server_time"], device_id=fields["device_id"],
        user_id=fields["user_id"], amplitude_id=live, original_amplitude_id=original,
        event_properties=fields["event_properties"], user_properties=fields["user_properties"],
    )


def _legacy_positions(connection: sa.Connection, ids: Iterable[int], *, after: int, limit: int,
                      newest_first: bool) -> list[int]:
    legacy = t.legacy_timeline
    position = legacy.c.position
    query = (sa.select(position).where(legacy.c.amplitude_id.in_(list(ids)), position > after)
             .order_by(position.desc() if newest_first else position).limit(limit))
    return [row[0] for row in connection.execute(query)]
