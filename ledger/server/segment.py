"""Segment messages as Amplitude HTTP V2 events, so Segment SDKs feed the same identity rules.

`anonymousId` is the device ID, `userId` the user ID, `messageId` the insert_id, `timestamp`
the event time and `traits` are `$set` on the user. Values are passed through unchecked: the
ledger validates the resulting events exactly like Amplitude ones, so a bad `userId` fails
as an invalid `user_id`.

Decisions where Segment has no Amplitude equivalent:
- `group` is an identify call: it binds the IDs it carries like any identify and adds the
  group ID to the user property `groups` (`$postInsert`, each group once). Group traits
  describe the group, not the person, and are not stored.
- `alias` is acknowledged and stores nothing. It asks to join two IDs; under the ledger's
  rules a user ID is bound once and two user IDs are never merged, and an anonymous ID is
  joined to a user ID by any identify or track call that carries both.
- Messages of any other type are acknowledged and store nothing, as Segment destinations do.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.calls import IDENTIFY
from ledger.domain.times import from_iso
from ledger.errors import InvalidRequest

# Where Segment's libraries post: server libraries and analytics.js's batching mode send
# batches; analytics.js sends each message alone to the first letter of its type; the HTTP
# Tracking API names the type in full.
BATCH_PATHS = ("/v1/batch", "/v1/b")
MESSAGE_PATHS = {
    f"/v1/{name}": kind
    for kind in ("track", "identify", "page", "screen", "group", "alias")
    for name in (kind, kind[0])
}

_IGNORED = object()


def to_amplitude(batch: list[Any]) -> tuple[list[Any], list[int]]:
    """The Amplitude events of a Segment batch, and the batch index each one came from."""
    events: list[Any] = []
    origins: list[int] = []
    for index, message in enumerate(batch):
        event = _event(message)
        if event is not _IGNORED:
            events.append(event)
            origins.append(index)
    return events, origins


def renumber(error: InvalidRequest, origins: list[int]) -> InvalidRequest:
    """Point the bad-event indices of a refusal at the Segment batch instead of the events."""
    return error.renumbered(origins)


def _event(message: Any) -> Any:
    """One message as an Amplitude event; a non-object is passed on as it is, for the ledger to refuse."""
    if not isinstance(message, dict):
        return message
    kind = message.get("type")
    if kind == "track":
        event_type, properties = message.get("event"), message.get("properties")
    elif kind in ("page", "screen"):
        event_type, properties = _view(kind, message)
    elif kind in ("identify", "group"):
        event_type, properties = IDENTIFY, None
    else:
        return _IGNORED
    return {
        "event_type": event_type,
        "user_id": message.get("userId"),
        "device_id": message.get("anonymousId"),
        "insert_id": message.get("messageId"),
        "time": _millis(message.get("timestamp")),
        "event_properties": properties,
        "user_properties": _user_operations(kind, message),
    }


def _view(kind: str, message: dict[str, Any]) -> tuple[str, Any]:
    """Page and screen views named as Amplitude's Segment destination names them."""
    name = message.get("name")
    properties = message.get("properties")
    noun = kind.capitalize()
    if not isinstance(name, str) or not name:
        return f"Loaded a {noun}", properties
    if isinstance(properties, dict):
        properties = {**properties, "name": name}
    return f"Viewed {name} {noun}", properties


def _user_operations(kind: str, message: dict[str, Any]) -> Any:
    if kind == "group":
        group_id = message.get("groupId")
        return None if group_id is None else {"$postInsert": {"groups": group_id}}
    traits = message.get("traits")
    return {"$set": traits} if kind == "identify" and traits else None


def _millis(timestamp: Any) -> Any:
    """ISO-8601 (naive means UTC) as epoch milliseconds; anything else is passed on to be refused."""
    if not isinstance(timestamp, str):
        return timestamp
    try:
        return from_iso(timestamp)
    except ValueError:
        return timestamp
