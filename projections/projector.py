"""Event -> rows: the pure mapping from ledger events to projection table writes.

Every event carries the outcome of its decision (the pointer it moved to, the user
properties that resulted), so projecting never reads the database and never
re-applies an identity rule. Writes are buffered per table and sent as
`executemany` groups; tables never read each other, so only the order within a
table matters, and that order is kept.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec
import sqlalchemy as sa

from ledger.domain import Device, Identity, User
from projections import tables as t

_json = msgspec.json.Encoder()


def to_json(value: Any) -> str:
    return _json.encode(value).decode()


_INSERT = {table.name: table.insert() for table in t.PROJECTION_TABLES}
_MOVE_POINTER = (
    sa.update(t.devices).where(t.devices.c.device_id == sa.bindparam("b_device_id")).values(pointer=sa.bindparam("pointer"))
)
_RECORD_USER_ID = (
    sa.update(t.identities)
    .where(t.identities.c.amplitude_id == sa.bindparam("b_amplitude_id"))
    .values(user_id=sa.bindparam("user_id"))
)
_SET_PROPERTIES = (
    sa.update(t.identities)
    .where(t.identities.c.amplitude_id == sa.bindparam("b_amplitude_id"))
    .values(user_properties=sa.bindparam("user_properties"))
)
_MARK_MERGED = (
    sa.update(t.identities)
    .where(t.identities.c.amplitude_id == sa.bindparam("b_amplitude_id"))
    .values(merged_into=sa.bindparam("merged_into"))
)
_MOVE_TIMELINE = (
    sa.update(t.timeline)
    .where(t.timeline.c.amplitude_id == sa.bindparam("b_amplitude_id"))
    .values(amplitude_id=sa.bindparam("amplitude_id"))
)


class Projector:
    """Buffers the writes for a page of events; `flush` sends them on one connection."""

    def __init__(self) -> None:
        self._buffers: dict[str, list[tuple[Any, list[dict[str, Any]]]]] = {}
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
        for groups in self._buffers.values():
            for statement, rows in groups:
                connection.execute(statement, rows)
        self._buffers.clear()

    def _write(self, table: sa.Table, statement: Any, row: dict[str, Any]) -> None:
        groups = self._buffers.setdefault(table.name, [])
        if groups and groups[-1][0] is statement:
            groups[-1][1].append(row)
        else:
            groups.append((statement, [row]))

    def _insert(self, table: sa.Table, row: dict[str, Any]) -> None:
        self._write(table, _INSERT[table.name], row)

    def _audit(self, position: int, kind: str, event: Any, amplitude_id: int,
               merged_amplitude_id: int | None = None) -> None:
        self._insert(t.audit, {
            "position": position,
            "kind": kind,
            "amplitude_id": amplitude_id,
            "merged_amplitude_id": merged_amplitude_id,
            "user_id": event.user_id,
            "device_id": event.device_id,
            "event_time": event.event_time,
            "server_time": event.server_time,
            "insert_id": event.insert_id,
        })

    @staticmethod
    def _ignore(position: int, event: Any) -> None:
        """Facts already projected through their twin event (User.Bound, Device.Tracked)."""

    def _identity_created(self, position: int, event: Identity.Created) -> None:
        self._insert(t.identities, {
            "amplitude_id": event.amplitude_id, "user_id": None, "merged_into": None, "user_properties": "{}",
        })
        self._audit(position, "created", event, event.amplitude_id)

    def _user_bound(self, position: int, event: User.Bound) -> None:
        self._write(t.identities, _RECORD_USER_ID, {"b_amplitude_id": event.amplitude_id, "user_id": event.user_id})
        self._audit(position, "bound", event, event.amplitude_id)

    def _device_linked(self, position: int, event: Any) -> None:
        amplitude_id = event.amplitude_id
        self._insert(t.device_identities, {
            "amplitude_id": amplitude_id, "device_id": event.device_id, "position": position,
        })
        self._audit(position, "linked", event, amplitude_id)

    def _properties_changed(self, position: int, event: Any) -> None:
        self._write(t.identities, _SET_PROPERTIES, {
            "b_amplitude_id": event.amplitude_id, "user_properties": to_json(event.user_properties),
        })

    def _merged(self, position: int, event: Identity.Merged) -> None:
        merged, live = event.amplitude_id, event.merged_amplitude_id
        self._write(t.identities, _MARK_MERGED, {"b_amplitude_id": merged, "merged_into": live})
        self._write(t.timeline, _MOVE_TIMELINE, {"b_amplitude_id": merged, "amplitude_id": live})
        self._insert(t.merges, {
            "amplitude_id": merged,
            "merged_amplitude_id": live,
            "merge_event_time": event.event_time,
            "merge_server_time": event.server_time,
            "position": position,
        })
        self._audit(position, "merged", event, merged, live)

    def _device_seen(self, position: int, event: Device.Seen) -> None:
        self._insert(t.devices, {"device_id": event.device_id, "pointer": event.amplitude_id})

    def _pointer_moved(self, position: int, event: Device.PointerMoved) -> None:
        self._write(t.devices, _MOVE_POINTER, {"b_device_id": event.device_id, "pointer": event.amplitude_id})
        self._audit(position, "pointer_moved", event, event.amplitude_id)

    def _tracked(self, position: int, event: Device.Tracked) -> None:
        self._insert(t.timeline, {
            "position": position,
            "amplitude_id": event.amplitude_id,
            "original_amplitude_id": event.amplitude_id,
            "device_id": event.device_id,
            "user_id": event.user_id,
            "insert_id": event.insert_id,
            "event_type": event.event_type,
            "time": event.event_time,
            "server_time": event.server_time,
            "event_properties": to_json(event.event_properties),
            "user_properties": to_json(event.user_properties),
        })

