"""The resolution rule: which amplitude ID a call belongs to, and the facts it causes.

A domain service over the aggregates, free of I/O: it asks `Aggregates` for what
exists and tells the aggregates what happened. The aggregates refuse anything that
would break an invariant.
"""

from __future__ import annotations

from typing import Any, Protocol

from ledger.domain.calls import Call
from ledger.domain.groups import group_identify_sender
from ledger.domain.keys import Keys
from ledger.domain.model import AmplitudeIdentity, Cause, Device, Group, User
from ledger.domain.timeline import Timeline, is_duplicate


class Aggregates(Protocol):
    """What resolution needs from storage: look-ups, a place for new aggregates, and the timelines."""

    #: How device IDs and user IDs become stored keys (the ledger's secret is inside).
    keys: Keys

    def device(self, device_id: str) -> Device | None: ...

    def user(self, user_id: str) -> User | None: ...

    def identity(self, amplitude_id: int) -> AmplitudeIdentity: ...

    def new_identity(self, cause: Cause) -> AmplitudeIdentity: ...

    def group(self, group_type: str, group_value: str) -> Group | None: ...

    def add(self, aggregate: Device | User | Group) -> None: ...

    def last_received(self, device_id: str, insert_id: str) -> int | None:
        """The server time of the last stored call with this (device ID, insert_id), if any."""
        ...

    def append(self, kind: type[Any], amplitude_id: int, state: dict[str, Any]) -> None:
        """Append a `Timeline` event (its state) to the amplitude ID's stream of that kind (and keep
        its receipt, if it has an insert_id)."""
        ...

    def receive(self, device_id: str, insert_id: str, server_time: int) -> None:
        """Keep the receipt of a call stored without a timeline event (a `$groupidentify` call)."""
        ...


def resolve_call(call: Call, server_time: int, aggregates: Aggregates, dedup_window_ms: int) -> bool:
    """Apply one call. Returns False (and changes nothing) if it is a duplicate."""
    if call.is_group_identify:
        return _identify_groups(call, server_time, aggregates, dedup_window_ms)
    cause = Cause(call.device_id, call.user_id, call.time, server_time, call.insert_id)
    device = aggregates.device(call.device_id)
    if call.insert_id is not None and is_duplicate(
            _last_received(aggregates, device, call.device_id, call.insert_id), server_time, dedup_window_ms):
        return False

    if call.user_id is not None:
        target = _identity_for_user(call.user_id, device, cause, aggregates)
    else:
        # A device whose pointer was forgotten starts a new person, as a new device does.
        previous = _pointed(aggregates, device)
        target = previous if previous is not None else aggregates.new_identity(cause)

    if device is None:
        device = Device.seen(target.amplitude_id, cause, aggregates.keys.device(call.device_id))
        aggregates.add(device)
    else:
        device.move_pointer(target.amplitude_id, cause)
    target.link_device(cause)

    if call.operations:
        target.update_user_properties(call.operations, cause)
    if call.groups:
        target.join_groups(call.groups, cause)
    state: dict[str, Any] = {"device_id": call.device_id, "user_id": call.user_id, "event_time": call.time,
             "server_time": server_time, "insert_id": call.insert_id}
    if call.groups:  # kept with the call (exports carry it) only where sent: other calls store what they did
        state["groups"] = call.groups
    if call.is_identify:
        aggregates.append(Timeline.Identified, target.amplitude_id, state)
    else:
        state["event_type"] = call.event_type
        state["event_properties"] = call.event_properties
        state["user_properties"] = target.user_properties
        aggregates.append(Timeline.Tracked, target.amplitude_id, state)
    return True


def _identify_groups(call: Call, server_time: int, aggregates: Aggregates, dedup_window_ms: int) -> bool:
    """A `$groupidentify` call changes the properties of the groups it names, and nothing else:
    no person is resolved, no ID bound, no event counted (docs/rules.md, Groups). One with an
    insert_id is deduplicated like any call (a retried `$add` must not add twice); False if it was."""
    if call.insert_id is not None:
        sender = group_identify_sender(call.device_id)
        if is_duplicate(aggregates.last_received(sender, call.insert_id), server_time, dedup_window_ms):
            return False
        aggregates.receive(sender, call.insert_id, server_time)
    if not call.group_operations:
        return True
    for group_type, names in call.groups.items():
        for group_value in names:
            group = aggregates.group(group_type, group_value)
            if group is None:
                group = Group.start(group_type, group_value, server_time)
                aggregates.add(group)
            group.update_properties(call.group_operations, server_time)
    return True


def _last_received(aggregates: Aggregates, device: Device | None, device_id: str, insert_id: str) -> int | None:
    """Receipts are kept by the store; a 0.1.0 ledger's older ones are on the device's own stream."""
    stored = aggregates.last_received(device_id, insert_id)
    legacy = None if device is None else device.recent_insert_ids.get(insert_id)
    return stored if legacy is None else max(legacy, stored or legacy)


def _pointed(aggregates: Aggregates, device: Device | None) -> AmplitudeIdentity | None:
    """The identity the device points to, None for no device or a forgotten amplitude ID."""
    if device is None:
        return None
    identity = aggregates.identity(device.pointer)
    return None if identity.forgotten else identity


def _identity_for_user(user_id: str, device: Device | None, cause: Cause,
                       aggregates: Aggregates) -> AmplitudeIdentity:
    """The identity a call with a user ID goes to, binding or merging on the way."""
    previous = _pointed(aggregates, device)
    user = aggregates.user(user_id)
    if user is not None:
        target = aggregates.identity(user.amplitude_id)
        if previous is not None and previous.amplitude_id != target.amplitude_id and previous.user_id is None:
            previous.merge_into(target, cause)
        return target
    # A user ID never seen: it takes the device's anonymous identity, or a new one
    # when the device is new or already belongs to another user (shared device).
    target = previous if previous is not None and previous.user_id is None else aggregates.new_identity(cause)
    target.record_user_id(cause)
    aggregates.add(User.bind(target.amplitude_id, cause, aggregates.keys.user(user_id)))
    return target
