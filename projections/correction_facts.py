"""The rows of the facts a correction or a deletion job records (docs/corrections.md, docs/deletions.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections import tables as t
from projections.identity_facts import identity_starts
from projections.writes import MOVE_POINTER, REATTRIBUTE, RECORD_USER_ID, Fields, to_json

if TYPE_CHECKING:
    from projections.projector import Handler, Projector


def retracted(rows: Projector, position: int, fields: Fields) -> None:
    rows.insert(t.corrections, (position, fields["user_id"], fields["amplitude_id"], fields["reason"],
                                 fields["requester"], fields["server_time"], to_json(fields["summary"])))
    rows.amended(position, "retracted", {**fields, "correction": fields["user_id"]}, fields["amplitude_id"],
                  user_id=fields["user_id"])


def retired(rows: Projector, position: int, fields: Fields) -> None:
    """Its user ID is released (a new amplitude ID may carry it: same statement, so in log order)."""
    amplitude_id, merged_into = fields["amplitude_id"], fields["merged_into"]
    rows.insert(t.retired, (amplitude_id, fields["server_time"], fields["correction"], position))
    if fields["user_id"] is not None:
        rows.update(RECORD_USER_ID, (None, amplitude_id), position)
    rows.amended(position, "retired" if merged_into is None else "merge_undone", fields, amplitude_id,
                  user_id=fields["user_id"], merged_amplitude_id=merged_into)


def split_off(rows: Projector, position: int, fields: Fields) -> None:
    amplitude_id = fields["amplitude_id"]
    identity_starts(rows, amplitude_id, to_json(fields["user_properties"]), position)
    if fields["user_id"] is not None:
        rows.update(RECORD_USER_ID, (fields["user_id"], amplitude_id), position)
    for device_id in fields["device_ids"]:
        rows.insert(t.device_identities, (amplitude_id, device_id, position))
    moved_before = set(fields["moved_before"])
    for tracked, key in ((True, "tracked"), (False, "identified")):
        for moved in fields[key]:
            if moved in moved_before:
                rows.update(REATTRIBUTE, (amplitude_id, moved), position)
            else:
                rows.insert(t.reattributed, (moved, amplitude_id, tracked, amplitude_id, position))
                rows.inserted(REATTRIBUTE, moved, position)
    for seq, old in enumerate(fields["split_from"]):
        rows.amended(position, "split", fields, amplitude_id, user_id=fields["user_id"],
                      merged_amplitude_id=old, seq=seq)


def rebound(rows: Projector, position: int, fields: Fields) -> None:
    rows.amended(position, "rebound", fields, fields["amplitude_id"], user_id=fields["user_id"],
                  merged_amplitude_id=fields["previous_amplitude_id"])


def repointed(rows: Projector, position: int, fields: Fields) -> None:
    rows.update(MOVE_POINTER, (fields["amplitude_id"], fields["device_id"]), position)
    rows.amended(position, "pointer_moved", fields, fields["amplitude_id"], user_id=None,
                  device_id=fields["device_id"])


def forgotten(rows: Projector, position: int, fields: Fields) -> None:
    """A deletion job ran: its people's rows are gone (`projections.erasure`); it is on record."""
    for amplitude_id in fields["forgotten"]:
        rows.insert(t.forgotten, (amplitude_id, fields["day"], position))


HANDLERS: dict[str, Handler] = {
    "DeletionJob.Ran": forgotten,
    "Correction.Retracted": retracted,
    "Identity.Retired": retired,
    "Identity.SplitOff": split_off,
    "User.Rebound": rebound,
    "Device.Repointed": repointed,
}
