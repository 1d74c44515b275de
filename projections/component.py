"""The people a correction must re-resolve, read from the projection tables (docs/corrections.md).

Every call carrying a user ID belongs to the person that user ID is bound to, and every call
on a device belongs to a person of an amplitude ID linked to that device. So the people
reachable from one person through shared devices (a fixed point) hold every call that shares
a device or a user ID with any of their calls: nobody outside can be affected by re-resolving
them, and the cost is proportional to them, not to the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from projections import tables as t

#: Bound parameters per statement (SQLite allows 32766): stay far below.
CHUNK = 900


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    values = list(values)
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def bound_amplitude_id(connection: sa.Connection, user_id: str) -> int | None:
    """The amplitude ID a user ID is bound to now (None: never seen, or retracted)."""
    return connection.execute(sa.select(t.identities.c.amplitude_id).where(t.identities.c.user_id == user_id)).scalar()


def is_retracted(connection: sa.Connection, user_id: str) -> bool:
    return connection.execute(sa.select(t.corrections.c.position).where(
        t.corrections.c.user_id == user_id)).first() is not None


def retracted_among(connection: sa.Connection, user_ids: Iterable[str]) -> set[str]:
    """Which of these user IDs an earlier correction retracted."""
    found: set[str] = set()
    column = t.corrections.c.user_id
    for chunk in _chunks(user_ids):
        found.update(row[0] for row in connection.execute(sa.select(column).where(column.in_(chunk))))
    return found


def _live(connection: sa.Connection, amplitude_ids: Iterable[int]) -> set[int]:
    """The live amplitude IDs of these (retired ones left out: they hold no call)."""
    identities = t.identities
    found: set[int] = set()
    for chunk in _chunks(amplitude_ids):
        query = sa.select(sa.func.coalesce(identities.c.merged_into, identities.c.amplitude_id)).where(
            identities.c.amplitude_id.in_(chunk),
            identities.c.amplitude_id.not_in(sa.select(t.retired.c.amplitude_id)))
        found.update(row[0] for row in connection.execute(query))
    return found


def people_sharing_devices(connection: sa.Connection, amplitude_id: int) -> dict[int, list[int]]:
    """The person of `amplitude_id` and everyone reachable through shared devices.

    Returns live amplitude ID -> that person's amplitude IDs (the live one first, then the merged ones).
    """
    people: dict[int, list[int]] = {}
    frontier = _live(connection, [amplitude_id])
    seen_devices: set[str] = set()
    merges, links = t.merges, t.device_identities
    while frontier:
        ids: list[int] = []
        for live in frontier:
            people[live] = [live]
        for chunk in _chunks(frontier):
            for merged, live in connection.execute(sa.select(merges.c.amplitude_id, merges.c.merged_amplitude_id)
                                                   .where(merges.c.merged_amplitude_id.in_(chunk))
                                                   .order_by(merges.c.position)):
                people[live].append(merged)
        for live in frontier:
            ids.extend(people[live])
        devices: set[str] = set()
        for chunk in _chunks(ids):
            devices.update(row[0] for row in connection.execute(
                sa.select(links.c.device_id).where(links.c.amplitude_id.in_(chunk))))
        devices -= seen_devices
        seen_devices |= devices
        linked: set[int] = set()
        for chunk in _chunks(devices):
            linked.update(row[0] for row in connection.execute(
                sa.select(links.c.amplitude_id).where(links.c.device_id.in_(chunk))))
        frontier = _live(connection, linked) - people.keys()
    return people


def reattributed_to(connection: sa.Connection, amplitude_ids: Iterable[int]) -> dict[int, int]:
    """Position -> amplitude ID of the calls an earlier correction attributed to one of these."""
    moved = t.reattributed
    found: dict[int, int] = {}
    for chunk in _chunks(amplitude_ids):
        found.update(connection.execute(sa.select(moved.c.position, moved.c.amplitude_id)
                                        .where(moved.c.amplitude_id.in_(chunk))).all())
    return found


def has_legacy_events(connection: sa.Connection, amplitude_ids: Iterable[int]) -> bool:
    """Whether any of these amplitude IDs holds tracked events of 0.1.0's shape (on device streams)."""
    legacy = t.legacy_timeline
    return any(connection.execute(sa.select(legacy.c.position).where(legacy.c.amplitude_id.in_(chunk)).limit(1))
               .first() is not None for chunk in _chunks(amplitude_ids))
