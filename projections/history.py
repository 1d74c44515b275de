"""The read side's history: every value an update replaced, valid over a range of ledger positions.

Each column the projector updates (a device's pointer, an amplitude ID's user ID, merged-into
and user properties, a re-attributed call's amplitude ID) keeps its values in a history table
(`projections.tables.HISTORY_TABLES`): (key, valid_from, value, valid_to). A value is valid from
the position of the fact that set it up to, not including, the position of the fact that
replaced it; the present has `valid_to` NULL. The projector writes them in the same transaction
as the rows they describe, so the past stays exact at every position, even between the facts of
one request or one correction. `AsOf` turns the tables into their state at a position: index
lookups on the live database instead of a replay.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from projections import tables as t

#: A change of a value as the projector saw it: (key, value, position, set by the row's insert).
Version = tuple[Any, Any, int, bool]


class Versions:
    """The history table of one updated column, and the statements that keep it."""

    __slots__ = ("close", "close_over_arrays", "table")

    def __init__(self, table: sa.Table, key: str) -> None:
        self.table = table
        #: Ends the present value of a key at a position: rows of (position, key).
        self.close = f"UPDATE {table.name} SET valid_to = ? WHERE {key} = ? AND valid_to IS NULL"
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        key_type = table.c[key].type.compile(dialect=dialect)
        #: The same for every row at once, given (positions, keys) as two PostgreSQL arrays.
        self.close_over_arrays = (
            f"UPDATE {table.name} AS target SET valid_to = source.value "
            f"FROM unnest(?::BIGINT[], ?::{key_type}[]) AS source(value, key) "
            f"WHERE target.{key} = source.key AND target.valid_to IS NULL")

    @staticmethod
    def rows(versions: list[Version]) -> tuple[list[tuple[Any, int]], list[tuple[Any, ...]]]:
        """The keys whose stored present ends, as (position, key), and the history rows to insert.

        A value replaced at its own position (a row inserted and updated by one fact) was never
        visible: it gets no row.
        """
        by_key: dict[Any, list[Version]] = {}
        for version in versions:
            by_key.setdefault(version[0], []).append(version)
        closed, rows = [], []
        for key, changes in by_key.items():
            if not changes[0][3]:
                closed.append((changes[0][2], key))
            for index, (_, value, position, _) in enumerate(changes):
                until = changes[index + 1][2] if index + 1 < len(changes) else None
                if until != position:
                    rows.append((key, position, value, until))
        return closed, rows


def drop_orphans(connection: sa.Connection) -> None:
    """Delete the history of rows that do not exist: a log a deletion job rewrote still holds facts
    that changed a forgotten person's rows whose creation it erased. Live, the job deletes that
    history itself (`projections.erasure`); a rebuild replays those facts and ends here."""
    for history in t.HISTORY_TABLES:
        table, key = history.info["of"]
        connection.execute(history.delete().where(~sa.exists().where(table.c[key] == history.c[key])))


class Tables(NamedTuple):
    """The tables the read API asks, by name: the live ones (`LIVE`) or their state at a position (`at`)."""

    devices: sa.FromClause
    device_identities: sa.FromClause
    identities: sa.FromClause
    merges: sa.FromClause
    legacy_timeline: sa.FromClause
    audit: sa.FromClause
    forgotten: sa.FromClause
    corrections: sa.FromClause
    retired: sa.FromClause
    reattributed: sa.FromClause
    group_properties: sa.FromClause
    group_members: sa.FromClause
    user_mappings: sa.FromClause


LIVE = Tables(t.devices, t.device_identities, t.identities, t.merges, t.legacy_timeline, t.audit, t.forgotten,
              t.corrections, t.retired, t.reattributed, t.group_properties, t.group_members, t.user_mappings)


def _valid(history: sa.Table, position: int) -> sa.ColumnElement[bool]:
    return sa.and_(history.c.valid_from <= position,
                   sa.or_(history.c.valid_to.is_(None), history.c.valid_to > position))


def _until(table: sa.Table, position: int) -> sa.FromClause:
    """A table whose rows are never updated: the rows written at or before `position`."""
    return sa.select(table).where(table.c.position <= position).subquery(f"{table.name}_then")


def at(position: int) -> Tables:
    """Every table as it stood once the fact at `position` was projected: the same columns, found by
    index lookups on the history (`valid_from <= position < valid_to`) and on the rows' positions."""
    pointers, user_ids = t.device_pointer_history, t.user_id_history
    merged, properties, moved = t.merged_into_history, t.user_properties_history, t.reattributed_history
    devices = sa.select(pointers.c.device_id, pointers.c.pointer).where(_valid(pointers, position))
    identities = (sa.select(user_ids.c.amplitude_id, user_ids.c.user_id, merged.c.merged_into,
                            properties.c.user_properties)
                  .join(merged, sa.and_(merged.c.amplitude_id == user_ids.c.amplitude_id, _valid(merged, position)))
                  .join(properties, sa.and_(properties.c.amplitude_id == user_ids.c.amplitude_id,
                                            _valid(properties, position)))
                  .where(_valid(user_ids, position)))
    reattributed = (sa.select(t.reattributed.c.position, moved.c.amplitude_id, t.reattributed.c.tracked)
                    .join(moved, sa.and_(moved.c.position == t.reattributed.c.position, _valid(moved, position))))
    return Tables(devices.subquery("ledger_devices_then"), _until(t.device_identities, position),
                  identities.subquery("ledger_identities_then"), _until(t.merges, position),
                  _until(t.legacy_timeline, position), _until(t.audit, position), _until(t.forgotten, position),
                  _until(t.corrections, position), _until(t.retired, position),
                  reattributed.subquery("ledger_reattributed_then"), _until(t.group_properties, position),
                  _until(t.group_members, position), _until(t.user_mappings, position))
