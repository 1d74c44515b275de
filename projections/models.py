"""The answers the ledger gives: plain, immutable msgspec Structs that encode straight to JSON."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Identity(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One person as the ledger sees them: a live amplitude ID and everything folded into it.

    The last three are left out of answers while empty: the groups the person joined (type ->
    names, sorted), the global user ID their user ID is mapped onto, the user IDs mapped onto theirs.
    """

    amplitude_id: int
    user_id: str | None
    device_ids: list[str]
    merged_amplitude_ids: list[int]
    user_properties: dict[str, Any]
    groups: dict[str, list[str]] = {}
    global_user_id: str | None = None
    mapped_user_ids: list[str] = []


class GroupMember(msgspec.Struct, frozen=True, kw_only=True):
    """An amplitude ID (as it was when it joined) that joined a group, at which ledger position and when."""

    amplitude_id: int
    position: int
    server_time: int


class Group(msgspec.Struct, frozen=True, kw_only=True):
    """A group: its properties now, the live amplitude IDs of its members, and each joining."""

    group_type: str
    group_value: str
    properties: dict[str, Any]
    amplitude_ids: list[int]
    members: list[GroupMember]


class MappingEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One mapping (or, `unmap`, unmapping) of a user ID onto a global user ID: who asked, and when."""

    position: int
    user_id: str
    global_user_id: str
    unmap: bool
    requester: str
    server_time: int


class TimelineEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A tracked event with the amplitude ID it got on arrival and the one it counts for now
    (and the groups it named, left out of answers when it named none, with the properties those
    groups had at its position: group type -> group name -> properties, only groups that had any).
    """

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
    groups: dict[str, list[str]] = {}
    group_properties: dict[str, dict[str, dict[str, Any]]] = {}


class Merge(msgspec.Struct, frozen=True, omit_defaults=True):
    """A row of Amplitude's merged-users export: `amplitude_id` was merged into `merged_amplitude_id`."""

    amplitude_id: int
    merged_amplitude_id: int
    merge_event_time: int
    merge_server_time: int
    #: When a correction undid this merge (docs/corrections.md); left out of answers while it stands.
    undone_server_time: int | None = None


AuditKind = Literal["created", "bound", "linked", "pointer_moved", "merged",
                    "retracted", "retired", "merge_undone", "split", "rebound"]


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One identity fact, with the call that caused it and its place in the ledger."""

    kind: AuditKind
    amplitude_id: int
    user_id: str | None
    device_id: str
    event_time: int
    server_time: int
    position: int
    insert_id: str | None
    merged_amplitude_id: int | None
    #: The correction that recorded this fact (the user ID it retracted); left out for a call's facts.
    correction: str | None = None
    #: Who asked for the correction and why (on its "retracted" entry).
    requester: str | None = None
    reason: str | None = None



class CorrectionChanges(msgspec.Struct, frozen=True, kw_only=True):
    """What a correction changed: calls re-resolved, people before and after, and the moves it made."""

    calls: int
    people_before: int
    people_after: int
    #: Each retired amplitude ID and the new ones its events went to.
    split: dict[int, list[int]]
    events_reattributed: int
    #: Merges undone: merged amplitude ID -> the one it had been merged into.
    merges_undone: dict[int, int]
    #: User IDs bound to a new amplitude ID: user ID -> [old amplitude ID, new amplitude ID].
    bindings_moved: dict[str, list[int]]
    pointers_moved: int


class Correction(msgspec.Struct, frozen=True, kw_only=True):
    """One retraction of a user ID: who asked, why, when (server time), and what it changed."""

    position: int
    user_id: str
    amplitude_id: int
    reason: str
    requester: str
    server_time: int
    changes: CorrectionChanges


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """Counts over the whole ledger: tracked events, people with events, bound user IDs, devices, merges."""

    events: int
    users: int
    identified_users: int
    devices: int
    merges: int


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """Why the tracked event at `position` belongs to the person it belongs to."""

    position: int
    #: The amplitude ID it was attributed to when it was stored.
    arrived_as: int
    #: The live amplitude ID it counts for today; None if its person was forgotten.
    now: int | None
    #: The facts that put its device and user ID there and took it from `arrived_as` to `now`, in ledger order.
    because: list[AuditEntry]
