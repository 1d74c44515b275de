"""Whole-person timelines, read from the log's own index and the merges table.

A tracked event keeps the amplitude ID it got on arrival forever (its "original"); a
merge writes one row in the merges table and moves nothing. A person's timeline is the
union of the streams of their live amplitude ID and of every ID merged into it, merged
in log order here, the way Amplitude maps merged users at query time.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from typing import Any, Protocol

import sqlalchemy as sa

from projections.groups import with_group_properties
from projections.history import Tables
from projections.models import TimelineEvent
from projections.statements import per_tables, prepared

#: (position, original amplitude ID, the event's stored fields)
TrackedRow = tuple[int, int, dict[str, Any]]
#: No LIMIT: the largest page a query can ask for.
ALL = 2**62


class TimelineLog(Protocol):
    """What the timelines need from the log (implemented by `ledger.store.event_log.EventLog`)."""

    def stream_page(self, connection: sa.Connection, amplitude_ids: list[int], *, after: int, stop: int,
                    limit: int, newest_first: bool) -> list[TrackedRow]: ...

    def stream_count(self, connection: sa.Connection, amplitude_ids: list[int], stop: int) -> int: ...

    def tracked_at(self, positions: list[int]) -> list[TrackedRow]: ...

    def tracked(self, *, after: int, stop: int, limit: int) -> list[TrackedRow]: ...

    def tracked_counts(self, stop: int) -> dict[int, int]: ...


def person_timeline(connection: sa.Connection, tables: Tables, log: TimelineLog, ids: list[int], *, stop: int,
                    after: int,
                    limit: int | None, newest_first: bool) -> list[TimelineEvent]:
    """The tracked events of every amplitude ID in `ids` (the live one first), as the live one's.

    After a correction (docs/corrections.md) a retired amplitude ID's stream counts for nobody,
    and the events re-attributed to one of `ids` count for it.
    """
    limit = ALL if limit is None else limit
    streams, moved = ids, []
    corrected, legacy_stored = marks(connection, tables)
    if corrected:
        retired = retired_among(connection, tables, ids)
        streams = [amplitude_id for amplitude_id in ids if amplitude_id not in retired]
        moved = _moved_positions(connection, tables, ids, after=after, limit=limit, newest_first=newest_first)
    pages = [log.stream_page(connection, streams, after=after, stop=stop, limit=limit, newest_first=newest_first)]
    if moved:
        pages.append(log.tracked_at(moved)[::-1] if newest_first else log.tracked_at(moved))
    legacy = _legacy_positions(connection, tables, ids, after=after, limit=limit,
                               newest_first=newest_first) if legacy_stored else []
    if legacy:
        pages.append(log.tracked_at(legacy)[::-1] if newest_first else log.tracked_at(legacy))
    rows = heapq.merge(*pages, key=lambda row: row[0], reverse=newest_first)
    return with_group_properties(connection, tables, [answer(row, ids[0]) for row in itertools.islice(rows, limit)])


def person_event_count(connection: sa.Connection, tables: Tables, log: TimelineLog, ids: list[int],
                       stop: int) -> int:
    legacy = tables.legacy_timeline
    corrected, legacy_stored = marks(connection, tables)
    old = connection.execute(sa.select(sa.func.count()).where(legacy.c.amplitude_id.in_(ids))).scalar() or 0 \
        if legacy_stored else 0
    if not corrected:
        return old + log.stream_count(connection, ids, stop)
    retired = retired_among(connection, tables, ids)
    moved = tables.reattributed
    moved_in = connection.execute(sa.select(sa.func.count()).where(
        moved.c.amplitude_id.in_(ids), moved.c.tracked)).scalar() or 0
    streams = [amplitude_id for amplitude_id in ids if amplitude_id not in retired]
    return old + moved_in + (log.stream_count(connection, streams, stop) if streams else 0)  # no empty IN ()


@prepared
def _any_correction(tables: Tables) -> sa.Select[int]:
    return sa.select(sa.literal(1)).select_from(tables.corrections).limit(1)


@per_tables
def _retired_among(tables: Tables) -> sa.Select[int]:
    retired = tables.retired.c.amplitude_id
    return sa.select(retired).where(retired.in_(sa.bindparam("ids", expanding=True)))


def has_corrections(connection: sa.Connection, tables: Tables) -> bool:
    """Whether any correction was recorded (one cheap look; without one, no event was re-attributed)."""
    return _any_correction(tables).first(connection) is not None


def marks(connection: sa.Connection, tables: Tables) -> tuple[bool, bool]:
    """Whether any correction was recorded, and whether any tracked event of 0.1.0's shape is stored.

    Asked together, in one round trip: a person's page asks both (usually: neither).
    """
    corrected, legacy_stored = connection.execute(sa.select(
        sa.exists(sa.select(sa.literal(1)).select_from(tables.corrections)),
        sa.exists(sa.select(sa.literal(1)).select_from(tables.legacy_timeline)))).one()
    return bool(corrected), bool(legacy_stored)


def retired_among(connection: sa.Connection, tables: Tables, ids: list[int]) -> set[int]:
    """Which of these amplitude IDs a correction retired."""
    return {row[0] for row in connection.execute(_retired_among(tables), {"ids": ids})}


def reattributed_between(connection: sa.Connection, tables: Tables, first: int, last: int) -> dict[int, int]:
    """Position -> amplitude ID of the tracked events re-attributed by corrections, first <= position <= last."""
    moved = tables.reattributed
    return dict(connection.execute(sa.select(moved.c.position, moved.c.amplitude_id).where(
        moved.c.position.between(first, last), moved.c.tracked)).all())


def _moved_positions(connection: sa.Connection, tables: Tables, ids: list[int], *, after: int, limit: int,
                     newest_first: bool) -> list[int]:
    moved = tables.reattributed
    position = moved.c.position
    query = (sa.select(position).where(moved.c.amplitude_id.in_(ids), moved.c.tracked, position > after)
             .order_by(position.desc() if newest_first else position).limit(limit))
    return [row[0] for row in connection.execute(query)]


def counts_by_attribution(connection: sa.Connection, tables: Tables, log: TimelineLog, stop: int) -> dict[int, int]:
    """How many tracked events each amplitude ID has: on arrival, or as a correction re-attributed them."""
    counts = log.tracked_counts(stop)
    if has_corrections(connection, tables):
        for (amplitude_id,) in connection.execute(sa.select(tables.retired.c.amplitude_id)):
            counts.pop(amplitude_id, None)
        moved = tables.reattributed
        for amplitude_id, count in connection.execute(sa.select(moved.c.amplitude_id, sa.func.count()).where(
                moved.c.tracked).group_by(moved.c.amplitude_id)):
            counts[amplitude_id] = counts.get(amplitude_id, 0) + count
    legacy = tables.legacy_timeline
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
        groups=fields.get("groups", {}),
    )


def _legacy_positions(connection: sa.Connection, tables: Tables, ids: Iterable[int], *, after: int, limit: int,
                      newest_first: bool) -> list[int]:
    legacy = tables.legacy_timeline
    position = legacy.c.position
    query = (sa.select(position).where(legacy.c.amplitude_id.in_(list(ids)), position > after)
             .order_by(position.desc() if newest_first else position).limit(limit))
    return [row[0] for row in connection.execute(query)]
