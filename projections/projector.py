"""Event -> rows: the pure mapping from ledger events to projection table writes.

Every event carries the outcome of its decision (the pointer it moved to, the user
properties that resulted), so projecting never reads the database and never
re-applies an identity rule. Writes are buffered per statement and sent as one
`executemany` each, inserts first, then updates in order of first use. That order
is equivalent to applying the events one by one because an update only touches
rows inserted before it (a merged amplitude ID gets no new events), updates of
different statements set different columns, and each statement keeps its own rows
in log order (the last write wins).
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec
import sqlalchemy as sa

from ledger.domain.model import Device, Identity, User
from projections import tables as t

_json = msgspec.json.Encoder()


def to_json(value: Any) -> str:
    return _json.encode(value).decode()


def _insert_sql(table: sa.Table) -> str:
    """An INSERT taking a tuple in the table's column order (rows are built as tuples: cheaper)."""
    columns = ", ".join(column.name for column in table.columns)
    return f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('?' * len(table.columns))})"


_INSERT = {table.name: _insert_sql(table) for table in t.PROJECTION_TABLES}
_MOVE_POINTER = f"UPDATE {t.devices.name} SET pointer = ? WHERE device_id = ?"
_RECORD_USER_ID = f"UPDATE {t.identities.name} SET user_id = ? WHERE amplitude_id = ?"
_SET_PROPERTIES = f"UPDATE {t.identities.name} SET user_properties = ? WHERE amplitude_id = ?"
_MARK_MERGED = f"UPDATE {t.identities.name} SET merged_into = ? WHERE amplitude_id = ?"
_MOVE_TIMELINE = f"UPDATE {t.timeline.name} SET amplitude_id = ? WHERE amplitude_id = ?"


def _for_driver(sql: str, connection: sa.Connection) -> str:
    """The driver's own placeholder: `?` for sqlite3, `%s` for psycopg."""
    return sql if connection.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


class Projector:
    """Buffers the writes for a page of events; `flush` sends them on one connection."""

    def __init__(self) -> None:
        self._inserts: dict[str, list[tuple[Any, ...]]] = {}
        self._updates: dict[str, list[tuple[Any, ...]]] = {}
        self._handlers: dict[type, Callable[[int, Any], None]] = {
            Identity.Created: self._identity_created,
            User.Bound: self._user_bound,
            Identity.UserIdRecorded: self._ignore,
            Identity.DeviceLinked: self._device_linked,
            Identity.UserPropertiesUpdated: self._properties_changed,
            Identity.Absorbed: self._properties_changed,
            Identity.Merged: self._merged,
            Device.Seen: self._device_seen,
            Device.PointerMoved: self._pointer_moved,
            Device.Tracked: self._tracked,
            Device.Identified: self._ignore,
        }

    def apply(self, position: int, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(position, event)

    def flush(self, connection: sa.Connection) -> None:
        for buffer in (self._inserts, self._updates):
            for statement, rows in buffer.items():
                connection.exec_driver_sql(_for_driver(statement, connection), rows)
            buffer.clear()

    def _update(self, statement: str, row: tuple[Any, ...]) -> None:
        self._updates.setdefault(statement, []).append(row)

    def _insert(self, table: sa.Table, row: tuple[Any, ...]) -> None:
        """`row` lists the values in the table's column order (see projections.tables)."""
        self._inserts.setdefault(_INSERT[table.name], []).append(row)

    def _audit(self, position: int, kind: str, event: Any, amplitude_id: int,
               merged_amplitude_id: int | None = None, seq: int = 0) -> None:
        self._insert(t.audit, (position, seq, kind, amplitude_id, merged_amplitude_id, event.user_id, event.device_id,
                               event.event_time, event.server_time, event.insert_id))

    @staticmethod
    def _ignore(position: int, event: Any) -> None:
        """Facts already projected through their twin event (User.Bound, Device.Tracked)."""

    def _identity_created(self, position: int, event: Identity.Created) -> None:
        self._insert(t.identities, (event.amplitude_id, None, None, "{}"))
        self._audit(position, "created", event, event.amplitude_id)
        self._device_linked(position, event, seq=1)

    def _user_bound(self, position: int, event: User.Bound) -> None:
        self._update(_RECORD_USER_ID, (event.user_id, event.amplitude_id))
        self._audit(position, "bound", event, event.amplitude_id)

    def _device_linked(self, position: int, event: Identity.DeviceLinked | Identity.Created, seq: int = 0) -> None:
        self._insert(t.device_identities, (event.amplitude_id, event.device_id, position))
        self._audit(position, "linked", event, event.amplitude_id, seq=seq)

    def _properties_changed(self, position: int, event: Identity.UserPropertiesUpdated | Identity.Absorbed) -> None:
        self._update(_SET_PROPERTIES, (to_json(event.user_properties), event.amplitude_id))

    def _merged(self, position: int, event: Identity.Merged) -> None:
        merged, live = event.amplitude_id, event.merged_amplitude_id
        self._update(_MARK_MERGED, (live, merged))
        self._update(_MOVE_TIMELINE, (live, merged))
        self._insert(t.merges, (merged, live, event.event_time, event.server_time, position))
        self._audit(position, "merged", event, merged, live)

    def _device_seen(self, position: int, event: Device.Seen) -> None:
        self._insert(t.devices, (event.device_id, event.amplitude_id))

    def _pointer_moved(self, position: int, event: Device.PointerMoved) -> None:
        self._update(_MOVE_POINTER, (event.amplitude_id, event.device_id))
        self._audit(position, "pointer_moved", event, event.amplitude_id)

    def _tracked(self, position: int, event: Device.Tracked) -> None:
        self._insert(t.timeline, (
            position, event.amplitude_id, event.amplitude_id, event.device_id, event.user_id, event.insert_id,
            event.event_type, event.event_time, event.server_time, to_json(event.event_properties),
            to_json(event.user_properties),
        ))

