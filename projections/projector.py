"""Event -> rows: the pure mapping from the log's identity facts to projection table writes.

Facts arrive as (position, topic, fields): the read side depends on the stored format
(topics and field names), never on the write side's classes. Every fact carries the
outcome of its decision (the pointer it moved to, the user properties that resulted),
so projecting never reads the database and never re-applies an identity rule. Writes
are buffered per statement and sent as one `executemany` each, inserts first, then
updates in order of first use. That order is equivalent to applying the facts one by
one because an update only touches rows inserted before it, updates of different
statements set different columns, and each statement sets one column by one key, so only
its last row per key is sent (the last write wins). On PostgreSQL, where psycopg's
`executemany` costs a round of Python and a message per row, large inserts go by `COPY`
(`CopySink`) and each update statement goes as ONE `UPDATE ... FROM unnest(arrays)`
(`Update.over_arrays`). Tracked events are not projected: the log's own index is the
timeline (0.1.0's tracked events only get their position indexed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from projections import tables as t
from projections.history import Versions

_json = msgspec.json.Encoder()
#: Runs one statement (`?` placeholders) for each row.
Sink = Callable[[str, list[tuple[Any, ...]]], None]
#: Runs one statement (`?` placeholders) once, with these parameters.
Execute = Callable[[str, tuple[Any, ...]], None]
#: Appends rows to a table in bulk: (table name, column names, rows in that column order).
CopySink = Callable[[str, tuple[str, ...], list[tuple[Any, ...]]], None]
#: From this many rows on, an insert goes to the `CopySink` if there is one.
COPY_FROM = 100
Fields = dict[str, Any]


def to_json(value: Any) -> str:
    return _json.encode(value).decode()


def _insert_sql(table: sa.Table) -> str:
    """An INSERT taking a tuple in the table's column order (rows are built as tuples: cheaper)."""
    columns = ", ".join(column.name for column in table.columns)
    return f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('?' * len(table.columns))})"


_INSERT = {table.name: _insert_sql(table) for table in t.PROJECTION_TABLES}
#: What `COPY` needs of each insert statement: its table's name and columns.
_COPY = {_INSERT[table.name]: (table.name, tuple(column.name for column in table.columns))
         for table in t.PROJECTION_TABLES}


class Update:
    """`UPDATE table SET column = ? WHERE key = ?`, for rows of (value, key); its values' history is kept."""

    __slots__ = ("history", "one_row", "over_arrays", "unique")

    def __init__(self, table: sa.Table, column: str, key: str, history: sa.Table) -> None:
        self.one_row = f"UPDATE {table.name} SET {column} = ? WHERE {key} = ?"
        #: A unique column's value is handed on only after a row released it (set it to None).
        self.unique = bool(table.c[column].unique)
        #: The column's values over ranges of positions (`projections.history`).
        self.history = Versions(history, key)
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        value_type, key_type = (table.c[name].type.compile(dialect=dialect) for name in (column, key))
        #: The same for every row at once, given (values, keys) as two PostgreSQL arrays.
        self.over_arrays = (f"UPDATE {table.name} AS target SET {column} = source.value "
                            f"FROM unnest(?::{value_type}[], ?::{key_type}[]) AS source(value, key) "
                            f"WHERE target.{key} = source.key")


_MOVE_POINTER = Update(t.devices, "pointer", "device_id", t.device_pointer_history)
_RECORD_USER_ID = Update(t.identities, "user_id", "amplitude_id", t.user_id_history)
_SET_PROPERTIES = Update(t.identities, "user_properties", "amplitude_id", t.user_properties_history)
_MARK_MERGED = Update(t.identities, "merged_into", "amplitude_id", t.merged_into_history)
_REATTRIBUTE = Update(t.reattributed, "amplitude_id", "position", t.reattributed_history)


def _releases(rows: list[tuple[Any, ...]]) -> bool:
    """Whether a row frees its value, which a later row may take: one statement promises no order."""
    return any(row[0] is None for row in rows)


class Projector:
    """Buffers the writes for a page of facts; `flush` sends them.

    `copy`: large inserts go there (PostgreSQL outside a pipeline). `arrays`: updates go as one
    statement over arrays (PostgreSQL).
    """

    def __init__(self, copy: CopySink | None = None, *, arrays: bool = False) -> None:
        self._copy = copy
        self._arrays = arrays
        self._inserts: dict[str, list[tuple[Any, ...]]] = {}
        self._updates: dict[Update, list[tuple[Any, ...]]] = {}
        #: Each update's values in log order: (key, value, position, set by an insert).
        self._versions: dict[Update, list[tuple[Any, Any, int, bool]]] = {}
        self._handlers: dict[str, Callable[[int, Fields], None]] = {
            "Identity.Created": self._identity_created,
            "User.Bound": self._user_bound,
            "Identity.DeviceLinked": self._device_linked,
            "Identity.UserPropertiesUpdated": self._properties_changed,
            "Identity.Absorbed": self._properties_changed,
            "Identity.Merged": self._merged,
            "Device.Seen": self._device_seen,
            "Device.PointerMoved": self._pointer_moved,
            "Device.Tracked": self._legacy_tracked,
            "DeletionJob.Ran": self._forgotten,
            "Correction.Retracted": self._retracted,
            "Identity.Retired": self._retired,
            "Identity.SplitOff": self._split_off,
            "User.Rebound": self._rebound,
            "Device.Repointed": self._repointed,
            "Identity.GroupsJoined": self._groups_joined,
            "Group.PropertiesUpdated": self._group_properties_updated,
            "UserMapping.Mapped": self._mapped,
            "UserMapping.Unmapped": self._unmapped,
        }

    def apply(self, position: int, topic: str, fields: Fields) -> None:
        """Facts without a handler (a user ID recorded twice over, identify calls) change no row."""
        handler = self._handlers.get(topic)
        if handler is not None:
            handler(position, fields)

    def flush(self, sink: Sink, execute: Execute) -> None:
        for statement, rows in self._inserts.items():
            self._send(statement, rows, sink)
        for update, rows in self._updates.items():
            last = list({row[-1]: row for row in rows}.values())  # the last row per key
            self._send_update(update.one_row, update.over_arrays, last, sink, execute,
                              by_rows=update.unique and _releases(last))
        for update, versions in self._versions.items():  # after the rows they describe, same transaction
            closed, rows = update.history.rows(versions)
            if closed:
                self._send_update(update.history.close, update.history.close_over_arrays, closed, sink, execute)
            self._send(_INSERT[update.history.table.name], rows, sink)
        self._inserts.clear()
        self._updates.clear()
        self._versions.clear()

    def _send(self, statement: str, rows: list[tuple[Any, ...]], sink: Sink) -> None:
        if self._copy is not None and len(rows) >= COPY_FROM:
            self._copy(*_COPY[statement], rows)
        elif rows:
            sink(statement, rows)

    def _send_update(self, one_row: str, over: str, rows: list[tuple[Any, ...]], sink: Sink, execute: Execute, *,
                     by_rows: bool = False) -> None:
        if self._arrays and len(rows) > 1 and not by_rows:
            values, keys = zip(*rows, strict=True)
            execute(over, (list(values), list(keys)))
        else:
            sink(one_row, rows)

    def _update(self, update: Update, row: tuple[Any, ...], position: int) -> None:
        self._updates.setdefault(update, []).append(row)
        self._versions.setdefault(update, []).append((row[1], row[0], position, False))

    def _first_value(self, update: Update, key: Any, value: Any, position: int) -> None:
        """The value an inserted row starts with, from `position` on."""
        self._versions.setdefault(update, []).append((key, value, position, True))

    def _insert(self, table: sa.Table, row: tuple[Any, ...]) -> None:
        """`row` lists the values in the table's column order (see projections.tables)."""
        self._inserts.setdefault(_INSERT[table.name], []).append(row)

    def _audit(self, position: int, kind: str, fields: Fields, amplitude_id: int,
               merged_amplitude_id: int | None = None, seq: int = 0) -> None:
        self._insert(t.audit, (position, seq, kind, amplitude_id, merged_amplitude_id, fields["user_id"],
                               fields["device_id"], fields["event_time"], fields["server_time"], fields["insert_id"],
                               None))

    def _amended(self, position: int, kind: str, fields: Fields, amplitude_id: int, *, user_id: str | None,
                 merged_amplitude_id: int | None = None, device_id: str = "", seq: int = 0) -> None:
        """An audit row for a fact a correction recorded: at the correction's time, naming it."""
        time = fields["server_time"]
        self._insert(t.audit, (position, seq, kind, amplitude_id, merged_amplitude_id, user_id, device_id, time,
                               time, None, fields["correction"]))

    def _identity_created(self, position: int, fields: Fields) -> None:
        self._insert(t.identities, (fields["amplitude_id"], None, None, "{}"))
        self._identity_starts(fields["amplitude_id"], "{}", position)
        self._audit(position, "created", fields, fields["amplitude_id"])
        self._device_linked(position, fields, seq=1)

    def _identity_starts(self, amplitude_id: int, properties: str, position: int) -> None:
        self._first_value(_RECORD_USER_ID, amplitude_id, None, position)
        self._first_value(_MARK_MERGED, amplitude_id, None, position)
        self._first_value(_SET_PROPERTIES, amplitude_id, properties, position)

    def _user_bound(self, position: int, fields: Fields) -> None:
        self._update(_RECORD_USER_ID, (fields["user_id"], fields["amplitude_id"]), position)
        self._audit(position, "bound", fields, fields["amplitude_id"])

    def _device_linked(self, position: int, fields: Fields, seq: int = 0) -> None:
        self._insert(t.device_identities, (fields["amplitude_id"], fields["device_id"], position))
        self._audit(position, "linked", fields, fields["amplitude_id"], seq=seq)

    def _properties_changed(self, position: int, fields: Fields) -> None:
        self._update(_SET_PROPERTIES, (to_json(fields["user_properties"]), fields["amplitude_id"]), position)

    def _merged(self, position: int, fields: Fields) -> None:
        merged, live = fields["amplitude_id"], fields["merged_amplitude_id"]
        self._update(_MARK_MERGED, (live, merged), position)
        self._insert(t.merges, (merged, live, fields["event_time"], fields["server_time"], position))
        self._audit(position, "merged", fields, merged, live)

    def _device_seen(self, position: int, fields: Fields) -> None:
        self._insert(t.devices, (fields["device_id"], fields["amplitude_id"]))
        self._first_value(_MOVE_POINTER, fields["device_id"], fields["amplitude_id"], position)

    def _pointer_moved(self, position: int, fields: Fields) -> None:
        self._update(_MOVE_POINTER, (fields["amplitude_id"], fields["device_id"]), position)
        self._audit(position, "pointer_moved", fields, fields["amplitude_id"])

    def _legacy_tracked(self, position: int, fields: Fields) -> None:
        self._insert(t.legacy_timeline, (fields["amplitude_id"], position))

    # -- groups and user mapping (docs/rules.md) ------------------------------------------

    def _groups_joined(self, position: int, fields: Fields) -> None:
        for group_type, names in fields["groups"].items():
            for group_value in names:
                self._insert(t.group_members, (group_type, group_value, fields["amplitude_id"], position,
                                               fields["server_time"]))

    def _group_properties_updated(self, position: int, fields: Fields) -> None:
        self._insert(t.group_properties, (position, fields["group_type"], fields["group_value"],
                                          to_json(fields["group_properties"]), fields["server_time"]))

    def _mapped(self, position: int, fields: Fields, unmap: bool = False) -> None:
        self._insert(t.user_mappings, (position, fields["user_id"], fields["global_user_id"], unmap,
                                       fields["requester"], fields["server_time"]))

    def _unmapped(self, position: int, fields: Fields) -> None:
        self._mapped(position, fields, unmap=True)

    # -- the facts a correction records (docs/corrections.md) ----------------------------

    def _retracted(self, position: int, fields: Fields) -> None:
        self._insert(t.corrections, (position, fields["user_id"], fields["amplitude_id"], fields["reason"],
                                     fields["requester"], fields["server_time"], to_json(fields["summary"])))
        self._amended(position, "retracted", {**fields, "correction": fields["user_id"]}, fields["amplitude_id"],
                      user_id=fields["user_id"])

    def _retired(self, position: int, fields: Fields) -> None:
        """Its user ID is released (a new amplitude ID may carry it: same statement, so in log order)."""
        amplitude_id, merged_into = fields["amplitude_id"], fields["merged_into"]
        self._insert(t.retired, (amplitude_id, fields["server_time"], fields["correction"], position))
        if fields["user_id"] is not None:
            self._update(_RECORD_USER_ID, (None, amplitude_id), position)
        self._amended(position, "retired" if merged_into is None else "merge_undone", fields, amplitude_id,
                      user_id=fields["user_id"], merged_amplitude_id=merged_into)

    def _split_off(self, position: int, fields: Fields) -> None:
        amplitude_id = fields["amplitude_id"]
        properties = to_json(fields["user_properties"])
        self._insert(t.identities, (amplitude_id, None, None, properties))
        self._identity_starts(amplitude_id, properties, position)
        if fields["user_id"] is not None:
            self._update(_RECORD_USER_ID, (fields["user_id"], amplitude_id), position)
        for device_id in fields["device_ids"]:
            self._insert(t.device_identities, (amplitude_id, device_id, position))
        moved_before = set(fields["moved_before"])
        for tracked, key in ((True, "tracked"), (False, "identified")):
            for moved in fields[key]:
                if moved in moved_before:
                    self._update(_REATTRIBUTE, (amplitude_id, moved), position)
                else:
                    self._insert(t.reattributed, (moved, amplitude_id, tracked))
                    self._first_value(_REATTRIBUTE, moved, amplitude_id, position)
        for seq, old in enumerate(fields["split_from"]):
            self._amended(position, "split", fields, amplitude_id, user_id=fields["user_id"],
                          merged_amplitude_id=old, seq=seq)

    def _rebound(self, position: int, fields: Fields) -> None:
        self._amended(position, "rebound", fields, fields["amplitude_id"], user_id=fields["user_id"],
                      merged_amplitude_id=fields["previous_amplitude_id"])

    def _repointed(self, position: int, fields: Fields) -> None:
        self._update(_MOVE_POINTER, (fields["amplitude_id"], fields["device_id"]), position)
        self._amended(position, "pointer_moved", fields, fields["amplitude_id"], user_id=None,
                      device_id=fields["device_id"])

    def _forgotten(self, position: int, fields: Fields) -> None:
        """A deletion job ran: its people's rows are gone (`projections.erasure`); it is on record."""
        for amplitude_id in fields["forgotten"]:
            self._insert(t.forgotten, (amplitude_id, fields["day"], position))
