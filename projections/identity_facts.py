"""The rows of the facts of identify and track: identities, devices, bindings, merges (docs/rules.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections import tables as t
from projections.writes import MARK_MERGED, MOVE_POINTER, RECORD_USER_ID, SET_PROPERTIES, Fields, to_json

if TYPE_CHECKING:
    from projections.projector import Handler, Projector


def identity_created(rows: Projector, position: int, fields: Fields) -> None:
    identity_starts(rows, fields["amplitude_id"], "{}", position)
    rows.audit(position, "created", fields, fields["amplitude_id"])
    device_linked(rows, position, fields, seq=1)


def identity_starts(rows: Projector, amplitude_id: int, properties: str, position: int) -> None:
    """A new amplitude ID's row: no user ID, not merged, these user properties (its first values)."""
    rows.insert(t.identities, (amplitude_id, None, None, properties, properties, position))
    for update in (RECORD_USER_ID, MARK_MERGED, SET_PROPERTIES):
        rows.inserted(update, amplitude_id, position)


def user_bound(rows: Projector, position: int, fields: Fields) -> None:
    rows.update(RECORD_USER_ID, (fields["user_id"], fields["amplitude_id"]), position)
    rows.audit(position, "bound", fields, fields["amplitude_id"])


def device_linked(rows: Projector, position: int, fields: Fields, seq: int = 0) -> None:
    rows.insert(t.device_identities, (fields["amplitude_id"], fields["device_id"], position))
    rows.audit(position, "linked", fields, fields["amplitude_id"], seq=seq)


def properties_changed(rows: Projector, position: int, fields: Fields) -> None:
    rows.update(SET_PROPERTIES, (to_json(fields["user_properties"]), fields["amplitude_id"]), position)


def merged(rows: Projector, position: int, fields: Fields) -> None:
    merged, live = fields["amplitude_id"], fields["merged_amplitude_id"]
    rows.update(MARK_MERGED, (live, merged), position)
    rows.insert(t.merges, (merged, live, fields["event_time"], fields["server_time"], position))
    rows.audit(position, "merged", fields, merged, live)


def device_seen(rows: Projector, position: int, fields: Fields) -> None:
    rows.insert(t.devices, (fields["device_id"], fields["amplitude_id"], fields["amplitude_id"], position))
    rows.inserted(MOVE_POINTER, fields["device_id"], position)


def pointer_moved(rows: Projector, position: int, fields: Fields) -> None:
    rows.update(MOVE_POINTER, (fields["amplitude_id"], fields["device_id"]), position)
    rows.audit(position, "pointer_moved", fields, fields["amplitude_id"])


def legacy_tracked(rows: Projector, position: int, fields: Fields) -> None:
    rows.insert(t.legacy_timeline, (fields["amplitude_id"], position))


HANDLERS: dict[str, Handler] = {
    "Identity.Created": identity_created,
    "User.Bound": user_bound,
    "Identity.DeviceLinked": device_linked,
    "Identity.UserPropertiesUpdated": properties_changed,
    "Identity.Absorbed": properties_changed,
    "Identity.Merged": merged,
    "Device.Seen": device_seen,
    "Device.PointerMoved": pointer_moved,
    "Device.Tracked": legacy_tracked,
}
