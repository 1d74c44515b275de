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
#: A row's first value is kept in the row itself (`first_<column>`), so an insert's has no value here.
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

        The first value of an inserted row gets no row (the row keeps it), and neither does a value
        replaced at its own position (a row updated twice by one fact): it was never visible.
        """
        by_key: dict[Any, list[Version]] = {}
        for version in versions:
            by_key.setdefault(version[0], []).append(version)
        closed, rows = [], []
        for key, changes in by_key.items():
            if not changes[0][3]:
                closed.append((changes[0][2], key))
            for index, (_, value, position, inserted) in enumerate(changes):
                until = changes[index + 1][2] if index + 1 < len(changes) else None
                if not inserted and until != position:
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


def _as_it_stood(table: sa.Table, position: int) -> sa.FromClause:
    """A table with updated columns, its rows created at or before `position`, each updated column
    its history row valid then or, before its first update, the value the row was inserted with."""
    histories = {history.info["column"]: history for history in t.HISTORY_TABLES if history.info["of"][0] is table}
    key = table.c[next(iter(histories.values())).info["of"][1]]
    joined: sa.FromClause = table
    columns: list[sa.ColumnElement[Any]] = []
    for column in table.c:
        if "kept_for" in column.info:
            continue
        history = histories.get(column.name)
        if history is None:
            columns.append(column)
            continue
        joined = joined.outerjoin(history, sa.and_(history.c[key.name] == key, _valid(history, position)))
        first = table.c.get(f"first_{column.name}")
        # Without a first column the value starts NULL: no valid history row is the same NULL.
        columns.append(history.c[column.name] if first is None
                       else sa.func.coalesce(history.c[column.name], first).label(column.name))
    return (sa.select(*columns).select_from(joined).where(table.c.created <= position)
            .subquery(f"{table.name}_then"))


def at(position: int) -> Tables:
    """Every table as it stood once the fact at `position` was projected: the same columns, found by
    index lookups on the rows' positions and on the history (`valid_from <= position < valid_to`)."""
    return Tables(_as_it_stood(t.devices, position), _until(t.device_identities, position),
                  _as_it_stood(t.identities, position), _until(t.merges, position),
                  _until(t.legacy_timeline, position), _until(t.audit, position), _until(t.forgotten, position),
                  _until(t.corrections, position), _until(t.retired, position),
                  _as_it_stood(t.reattributed, position), _until(t.group_properties, position),
                  _until(t.group_members, position), _until(t.user_mappings, position))
