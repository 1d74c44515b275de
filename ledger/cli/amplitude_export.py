"""Amplitude's export shapes: Export API rows in; merged-users rows out.

Amplitude's exports write times as UTC strings "YYYY-MM-DD HH:MM:SS.ffffff"; the ledger
keeps integer milliseconds. Translating here keeps that detail out of everything else.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.times import format_ms, from_iso
from projections.models import Merge

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_COPIED = ("user_id", "device_id", "event_properties", "user_properties")


def format_time(ms: int) -> str:
    return format_ms(ms, TIME_FORMAT)


def is_export_row(row: dict[str, Any]) -> bool:
    """Export rows carry `event_time` strings where HTTP V2 events carry `time` in milliseconds."""
    return "event_time" in row and "time" not in row


def event_from_export_row(row: dict[str, Any]) -> dict[str, Any]:
    """An Export API row as the HTTP V2 event that would have produced it.

    The client's `$insert_id` is kept (Amplitude's own `uuid` when there is none), so
    importing the same export twice within the deduplication window stores it once.
    Raises ValueError for an unreadable `event_time`.
    """
    if not isinstance(row["event_time"], str):
        raise ValueError(f"event_time is not a time string: {row['event_time']!r}")
    try:
        event: dict[str, Any] = {"time": from_iso(row["event_time"])}
    except ValueError:
        raise ValueError(f"event_time is not a time: {row['event_time']!r}") from None
    if row.get("event_type") is not None:
        event["event_type"] = row["event_type"]
    for field in _COPIED:
        if row.get(field) is not None:
            event[field] = row[field]
    insert_id = row.get("$insert_id") or row.get("insert_id") or row.get("uuid")
    if insert_id is not None:
        event["insert_id"] = str(insert_id)
    return event


MERGE_COLUMNS = ["amplitude_id", "merged_amplitude_id", "merge_event_time", "merge_server_time"]
#: Only in the export of a ledger where a correction undid a merge (docs/corrections.md).
UNDONE_COLUMN = "undone_server_time"


def merge_row(merge: Merge) -> dict[str, Any]:
    """A row of Amplitude's merged-users export table; a merge a correction undid also says when."""
    row = {
        "amplitude_id": merge.amplitude_id,
        "merged_amplitude_id": merge.merged_amplitude_id,
        "merge_event_time": format_time(merge.merge_event_time),
        "merge_server_time": format_time(merge.merge_server_time),
    }
    if merge.undone_server_time is not None:
        row[UNDONE_COLUMN] = format_time(merge.undone_server_time)
    return row
