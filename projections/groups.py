"""Reading groups and user mappings from their tables (`ledger_group_*`, `ledger_user_mappings`).

Both tables only ever get rows appended (a deletion job aside), so the present and the past
read alike: a group's properties are its last update, a user ID's mapping its last row
unless that row is an unmapping.
"""

from __future__ import annotations

import bisect
from typing import Any

import msgspec
import sqlalchemy as sa

from projections.history import Tables
from projections.models import Group, GroupMember, MappingEntry, TimelineEvent
from projections.statements import per_tables, prepared

_decode = msgspec.json.Decoder()


def _last(mappings: sa.FromClause) -> sa.ScalarSelect[Any]:
    """The last row of each user ID: its current mapping, unless it is an unmapping."""
    return sa.select(sa.func.max(mappings.c.position)).group_by(mappings.c.user_id).scalar_subquery()


def group(connection: sa.Connection, tables: Tables, group_type: str, group_value: str,
          live: dict[int, int]) -> Group | None:
    """The group's properties and members; None if no call ever named it. `live`: merged -> live amplitude ID.

    An amplitude ID a correction retired is no member any more: its calls' memberships went with them
    to the amplitude IDs it was split into (joined at the correction's position).
    """
    properties, members, retired = tables.group_properties, tables.group_members, tables.retired
    last = connection.execute(
        sa.select(properties.c.group_properties).where(properties.c.group_type == group_type,
                                                       properties.c.group_value == group_value)
        .order_by(properties.c.position.desc()).limit(1)).scalar()
    joined = connection.execute(
        sa.select(members.c.amplitude_id, members.c.position, members.c.server_time)
        .where(members.c.group_type == group_type, members.c.group_value == group_value,
               members.c.amplitude_id.not_in(sa.select(retired.c.amplitude_id)))
        .order_by(members.c.position, members.c.amplitude_id)).all()
    if last is None and not joined:
        return None
    return Group(group_type=group_type, group_value=group_value,
                 properties=_decode.decode(last) if last is not None else {},
                 amplitude_ids=list(dict.fromkeys(live.get(row.amplitude_id, row.amplitude_id) for row in joined)),
                 members=[GroupMember(amplitude_id=row.amplitude_id, position=row.position,
                                      server_time=row.server_time) for row in joined])


def with_group_properties(connection: sa.Connection, tables: Tables,
                          events: list[TimelineEvent]) -> list[TimelineEvent]:
    """The events, each that named groups with their properties as they stood at its position: the
    last update before it (updates never change earlier events). One query per group named."""
    named: dict[tuple[str, str], list[int]] = {}
    for event in events:
        for group_type, names in event.groups.items():
            for group_value in names:
                named.setdefault((group_type, group_value), []).append(event.position)
    if not named:
        return events
    updates = {group: _updates(connection, tables, group, min(positions), max(positions))
               for group, positions in named.items()}
    answered = []
    for event in events:
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for group_type, names in event.groups.items():
            for group_value in names:
                positions, properties = updates[group_type, group_value]
                before = bisect.bisect_left(positions, event.position)
                if before and properties[before - 1]:
                    found.setdefault(group_type, {})[group_value] = properties[before - 1]
        answered.append(msgspec.structs.replace(event, group_properties=found) if found else event)
    return answered


def _updates(connection: sa.Connection, tables: Tables, group: tuple[str, str], first: int,
             last: int) -> tuple[list[int], list[dict[str, Any]]]:
    """The group's updates that events at `first` to `last` can see: the last one before `first`, and
    every one before `last` (positions ascending, and the properties each left)."""
    properties = tables.group_properties
    same = sa.and_(properties.c.group_type == group[0], properties.c.group_value == group[1])
    since = sa.select(sa.func.max(properties.c.position)).where(same, properties.c.position < first).scalar_subquery()
    rows = connection.execute(
        sa.select(properties.c.position, properties.c.group_properties)
        .where(same, properties.c.position < last, properties.c.position >= sa.func.coalesce(since, 0))
        .order_by(properties.c.position)).all()
    return [row.position for row in rows], [_decode.decode(row.group_properties) for row in rows]


@per_tables
def _groups_of(tables: Tables) -> sa.Select[str, str]:
    members = tables.group_members
    return (sa.select(members.c.group_type, members.c.group_value)
            .where(members.c.amplitude_id.in_(sa.bindparam("amplitude_ids", expanding=True)))
            .distinct().order_by(members.c.group_type, members.c.group_value))


@prepared
def _last_mapping_of(tables: Tables) -> sa.Select[str, bool]:
    mappings = tables.user_mappings
    return (sa.select(mappings.c.global_user_id, mappings.c.unmap).where(mappings.c.user_id == sa.bindparam("user_id"))
            .order_by(mappings.c.position.desc()).limit(1))


@prepared
def _mapped_onto(tables: Tables) -> sa.Select[str]:
    mappings = tables.user_mappings
    return sa.select(mappings.c.user_id).where(mappings.c.global_user_id == sa.bindparam("user_id"),
                                               mappings.c.position.in_(_last(mappings)), mappings.c.unmap.is_(False))


def groups_of(connection: sa.Connection, tables: Tables, amplitude_ids: list[int]) -> dict[str, list[str]]:
    """The groups any of these amplitude IDs joined: group type -> names, both sorted."""
    found: dict[str, list[str]] = {}
    for group_type, group_value in connection.execute(_groups_of(tables), {"amplitude_ids": amplitude_ids}):
        found.setdefault(group_type, []).append(group_value)
    return found


def global_user_id(connection: sa.Connection, tables: Tables, user_id: str) -> str | None:
    """The global user ID `user_id` is mapped onto now, if any."""
    row = _last_mapping_of(tables).first(connection, user_id=user_id)
    return None if row is None or row[1] else str(row[0])


def mapped_user_ids(connection: sa.Connection, tables: Tables, user_id: str) -> list[str]:
    """The user IDs mapped onto `user_id` now, sorted."""
    return sorted(mapped for mapped, in _mapped_onto(tables).rows(connection, user_id=user_id))


def current_mappings(connection: sa.Connection, tables: Tables) -> dict[str, str]:
    """Every mapped user ID -> its global user ID, now."""
    mappings = tables.user_mappings
    return dict(connection.execute(
        sa.select(mappings.c.user_id, mappings.c.global_user_id).where(mappings.c.position.in_(_last(mappings)),
                                                                         mappings.c.unmap.is_(False))).all())


def mapping_history(connection: sa.Connection, tables: Tables, user_id: str | None) -> list[MappingEntry]:
    """Every mapping and unmapping in ledger order: all of them, or those naming `user_id` on either side."""
    mappings = tables.user_mappings
    query = sa.select(mappings).order_by(mappings.c.position)
    if user_id is not None:
        query = query.where(sa.or_(mappings.c.user_id == user_id, mappings.c.global_user_id == user_id))
    return [MappingEntry(position=row.position, user_id=row.user_id, global_user_id=row.global_user_id,
                         unmap=row.unmap, requester=row.requester, server_time=row.server_time)
            for row in connection.execute(query)]
