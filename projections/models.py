"""The answers the ledger gives: plain, immutable msgspec Structs that encode straight to JSON."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """One person as the ledger sees them: a live amplitude ID and everything folded into it."""

    amplitude_id: int
    user_id: str | None
    device_ids: list[str]
    merged_amplitude_ids: list[int]
    user_properties: dict[str, Any]


class TimelineEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A tracked event with the amplitude ID it got on arrival and the one it counts for now."""

    position: int
    insert_id: str | None
    event_type: str
    time: int
    server_time: int
    device_id: str
    user_id: str | None
    amplitude_id: int
    original_amplitude_id: int
    event_properties: dict[str, Any]
    user_properties: dict[str, Any]


class Merge(msgspec.Struct, frozen=True):
    """A row of Amplitude's merged-users export: `amplitude_id` was merged into `merged_amplitude_id`."""

    amplitude_id: int
    merged_amplitude_id: int
    merge_event_time: int
    merge_server_time: int


AuditKind = Literal["created", "bound", "linked", "pointer_moved", "merged"]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One identity fact, with the call that caused it and its place in the ledger."""

    kind: AuditKind
    amplitude_id: int
    user_id: str | None
    device_id: str
    event_time: int
    server_time: int
    position: int
    insert_id: str | None
    merged_amplitude_id: int | None = None



class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """Counts over the whole ledger: tracked events, people with events, bound user IDs, devices, merges."""

    events: int
    users: int
    identified_users: int
    devices: int
    merges: int
