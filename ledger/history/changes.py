"""The change feed: every identity fact after a position, as a small uniform record (docs/export.md).

Read from the log's identity facts (timelines are skipped by the query), so it is the one account of
what happened to whom: the HTTP feed, `ledger feed` and the Parquet identity tables all come from it.
Facts a reader can derive (an absorption beside its merge, properties updated, a mapping's counterpart
on the global user ID's stream) are not changes; neither are group property changes (they name no person).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ledger.domain.deletions import DeletionJob
from ledger.domain.keys import Keys
from ledger.domain.model import AmplitudeIdentity, Correction, Device, User, UserMapping
from ledger.store.event_log import EventLog

CREATED, LINKED, BOUND, POINTER_MOVED, MERGED, CORRECTED, FORGOTTEN = (
    "created", "linked", "bound", "pointer_moved", "merged", "corrected", "forgotten")
MAPPED, UNMAPPED, JOINED_GROUP = "mapped", "unmapped", "joined_group"
#: Facts read per look at the log; a page of changes may need several.
_READ = 2_000


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One identity fact: where (`position`) and when (`server_time`), what (`kind`), and whom.

    `amplitude_id` is the amplitude ID the fact is about; `other_amplitude_id` the one it relates to
    (the pointer's previous one, the person merged into, a binding's previous one, a mapping's global
    user ID's); `amplitude_ids` every amplitude ID a deletion forgot; `other_user_id` a mapping's
    global user ID; `groups` the groups a person joined.
    """

    position: int
    kind: str
    server_time: int
    amplitude_id: int | None = None
    other_amplitude_id: int | None = None
    amplitude_ids: list[int] = []
    device_id: str | None = None
    user_id: str | None = None
    other_user_id: str | None = None
    groups: dict[str, list[str]] = {}


class ChangePage(msgspec.Struct, frozen=True):
    """Changes after a position and the position to ask after next (past facts that are not changes)."""

    changes: list[Change]
    next: int


def _fact(kind: str, other: str | None = None) -> Callable[[int, dict[str, Any]], Change]:
    def change(position: int, fields: dict[str, Any]) -> Change:
        return Change(position=position, kind=kind, server_time=fields["server_time"],
                      amplitude_id=fields.get("amplitude_id"), other_amplitude_id=fields.get(other) if other else None,
                      device_id=fields.get("device_id"), user_id=fields.get("user_id"))
    return change


def _joined(position: int, fields: dict[str, Any]) -> Change:
    return msgspec.structs.replace(_fact(JOINED_GROUP)(position, fields), groups=fields["groups"])


def _forgotten(position: int, fields: dict[str, Any]) -> Change:
    return Change(position=position, kind=FORGOTTEN, server_time=fields["server_time"],
                  amplitude_ids=list(fields["forgotten"]))


_CHANGES: dict[str, Callable[[int, dict[str, Any]], Change]] = {
    AmplitudeIdentity.Created.TOPIC: _fact(CREATED),
    AmplitudeIdentity.SplitOff.TOPIC: _fact(CREATED),
    AmplitudeIdentity.DeviceLinked.TOPIC: _fact(LINKED),
    User.Bound.TOPIC: _fact(BOUND),
    User.Rebound.TOPIC: _fact(BOUND, "previous_amplitude_id"),
    Device.Seen.TOPIC: _fact(POINTER_MOVED),
    Device.PointerMoved.TOPIC: _fact(POINTER_MOVED, "previous_amplitude_id"),
    Device.Repointed.TOPIC: _fact(POINTER_MOVED, "previous_amplitude_id"),
    AmplitudeIdentity.Merged.TOPIC: _fact(MERGED, "merged_amplitude_id"),
    Correction.Retracted.TOPIC: _fact(CORRECTED),
    DeletionJob.Ran.TOPIC: _forgotten,
    AmplitudeIdentity.GroupsJoined.TOPIC: _joined,
}
_MAPPINGS = {UserMapping.Mapped.TOPIC: MAPPED, UserMapping.Unmapped.TOPIC: UNMAPPED}
_BINDINGS = (User.Bound.TOPIC, User.Rebound.TOPIC)


def _bound_at(log: EventLog, keys: Keys, user_id: str, position: int) -> int | None:
    """The amplitude ID a user ID was bound to at `position` (None: not yet bound, or retracted)."""
    bound = None
    for _, _, topic, fields in log.streams_until([keys.user(user_id)], position):
        bound = fields["amplitude_id"] if topic in _BINDINGS else None if topic == User.Retracted.TOPIC else bound
    return bound


def _mapping(log: EventLog, keys: Keys, position: int, topic: str, fields: dict[str, Any]) -> Change:
    """A mapping names user IDs only: their amplitude IDs are looked up as they were bound then."""
    return Change(position=position, kind=_MAPPINGS[topic], server_time=fields["server_time"],
                  user_id=fields["user_id"], amplitude_id=_bound_at(log, keys, fields["user_id"], position),
                  other_user_id=fields["global_user_id"],
                  other_amplitude_id=_bound_at(log, keys, fields["global_user_id"], position))


def changes(log: EventLog, keys: Keys, *, after: int, stop: int, limit: int) -> ChangePage:
    """Up to `limit` changes with after < position <= stop, in ledger order."""
    found: list[Change] = []
    reached = after
    while len(found) < limit and reached < stop:
        facts = log.read(reached, stop, _READ)
        if not facts:  # only timeline events are left before `stop`
            reached = stop
            break
        for position, topic, fields in facts:
            make = _CHANGES.get(topic)
            if make is not None or topic in _MAPPINGS:
                found.append(make(position, fields) if make is not None else _mapping(log, keys, position, topic, fields))
                if len(found) == limit:
                    return ChangePage(found, position)
            reached = position
    return ChangePage(found, reached)
