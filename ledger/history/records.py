"""The history format, version 1 (docs/export.md): one JSON object per line, each naming its kind.

Every record carries `format` ("ledger-history/1"), `record` (its kind) and `position` (where the
ledger it was read from stored it). Kinds:

- `call`: a tracked event or identify call as it was received: the Amplitude HTTP V2 fields the
  ledger keeps, the user property operations as sent (`user_properties`, not the stamped result),
  `server_upload_time`, and the `amplitude_id` it was stored under;
- `correction`: a retraction of a user ID (docs/corrections.md), with who asked, why and when;
- `forgotten`: a deletion job ran; `device_ids` are the shared devices whose next anonymous event
  then started a new person (the forgotten people's own data is absent);
- `group_identify`: a group's properties changed (a `$groupidentify` call, per group it named), with
  the operations as sent;
- `mapping`: a user ID mapped onto a global user ID, or unmapped (`unmap`), with who asked.

Future kinds are new values of `record` (a reader of version 1 refuses one it does not know, saying to
upgrade); a reader refuses a version it does not know rather than guess.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.calls import MAX_TIME_MS

FORMAT = "ledger-history/1"
CALL = "call"
CORRECTION = "correction"
FORGOTTEN = "forgotten"
GROUP_IDENTIFY = "group_identify"
MAPPING = "mapping"
KINDS = (CALL, CORRECTION, FORGOTTEN, GROUP_IDENTIFY, MAPPING)
#: The fields of a call record that make the Amplitude HTTP V2 event it was.
EVENT_FIELDS = ("event_type", "device_id", "user_id", "time", "insert_id", "event_properties", "user_properties",
                "groups")


class HistoryFormatError(ValueError):
    """A line that claims to be a history record but is not one this version can replay."""


def is_history_record(row: dict[str, Any]) -> bool:
    """History records name their format; Amplitude events and the 0.x warehouse rows do not."""
    value = row.get("format")
    return isinstance(value, str) and value.startswith("ledger-history/")


def checked(row: dict[str, Any]) -> dict[str, Any]:
    """The record if this version can replay it, else HistoryFormatError saying why."""
    if row.get("format") != FORMAT:
        raise HistoryFormatError(f"history format {row.get('format')!r} is not {FORMAT!r}: upgrade identity-ledger")
    if row.get("record") not in KINDS:
        raise HistoryFormatError(f"unknown history record kind {row.get('record')!r}: upgrade identity-ledger")
    for name, highest in (("position", 2**63 - 1), ("server_upload_time", MAX_TIME_MS)):
        if type(row.get(name)) is not int or not 0 <= row[name] <= highest:
            raise HistoryFormatError(f"{name} must be a whole number from 0 to {highest}")
    texts = {CORRECTION: ("user_id", "reason", "requester"), GROUP_IDENTIFY: ("group_type", "group_value"),
             MAPPING: ("user_id", "global_user_id", "requester")}.get(row["record"], ())
    for name in texts:
        if not isinstance(row.get(name), str):
            raise HistoryFormatError(f"a {row['record']} record's {name} must be a string")
    if row["record"] == FORGOTTEN and not (isinstance(row.get("device_ids"), list)
                                           and all(isinstance(device_id, str) for device_id in row["device_ids"])):
        raise HistoryFormatError("a forgotten record's device_ids must be a list of strings")
    if row["record"] == GROUP_IDENTIFY and not isinstance(row.get("group_properties"), dict):
        raise HistoryFormatError("a group_identify record's group_properties must be an object")
    if row["record"] == MAPPING and type(row.get("unmap")) is not bool:
        raise HistoryFormatError("a mapping record's unmap must be true or false")
    return row


def call_record(position: int, amplitude_id: int, fields: dict[str, Any], operations: dict[str, Any]) -> dict[str, Any]:
    """A stored call (its timeline event's fields) as it was received."""
    return {"format": FORMAT, "record": CALL, "position": position, "server_upload_time": fields["server_time"],
            "event_type": fields.get("event_type", "$identify"), "device_id": fields["device_id"],
            "user_id": fields["user_id"], "time": fields["event_time"], "insert_id": fields["insert_id"],
            "event_properties": fields.get("event_properties", {}), "user_properties": operations,
            "amplitude_id": amplitude_id, **({"groups": fields["groups"]} if fields.get("groups") else {})}


def correction_record(position: int, fields: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "record": CORRECTION, "position": position, "server_upload_time": fields["server_time"],
            "user_id": fields["user_id"], "reason": fields["reason"], "requester": fields["requester"]}


def forgotten_record(position: int, server_time: int, forgotten: list[int], device_ids: list[str]) -> dict[str, Any]:
    return {"format": FORMAT, "record": FORGOTTEN, "position": position, "server_upload_time": server_time,
            "people": len(forgotten), "device_ids": device_ids}


def group_identify_record(position: int, fields: dict[str, Any]) -> dict[str, Any]:
    """A group's properties changed: the operations as sent (a `$groupidentify` call naming it)."""
    return {"format": FORMAT, "record": GROUP_IDENTIFY, "position": position, "server_upload_time": fields["server_time"],
            "group_type": fields["group_type"], "group_value": fields["group_value"],
            "group_properties": fields["operations"]}


def mapping_record(position: int, fields: dict[str, Any], unmap: bool) -> dict[str, Any]:
    """A mapping or unmapping (`global_user_id`: the one it was mapped onto, for an unmapping too)."""
    return {"format": FORMAT, "record": MAPPING, "position": position, "server_upload_time": fields["server_time"],
            "user_id": fields["user_id"], "global_user_id": fields["global_user_id"], "unmap": unmap,
            "requester": fields["requester"]}


def identification_of(record: dict[str, Any]) -> dict[str, Any]:
    """The Group Identify API object a group_identify record was."""
    return {name: record[name] for name in ("group_type", "group_value", "group_properties")}


def event_of(record: dict[str, Any]) -> dict[str, Any]:
    """The Amplitude HTTP V2 event a call record was, None fields left out."""
    return {name: record[name] for name in EVENT_FIELDS if record.get(name) is not None}
