"""SPEC.md's resolution rule: which amplitude ID a call belongs to, and the facts it causes.

A domain service over the aggregates, free of I/O: it asks `Aggregates` for what
exists and tells the aggregates what happened. The aggregates refuse anything that
would break an invariant.
"""

from __future__ import annotations

from typing import Protocol

from ledger.domain.calls import Call
from ledger.domain.model import Cause, Device, Identity, User


class Aggregates(Protocol):
    """What resolution needs from storage: look-ups, and a place for new aggregates."""

    def device(self, device_id: str) -> Device | None: ...

    def user(self, user_id: str) -> User | None: ...

    def identity(self, amplitude_id: int) -> Identity: ...

    def new_identity(self, cause: Cause) -> Identity: ...

    def add(self, aggregate: Device | User) -> None: ...


def resolve_call(call: Call, server_time: int, aggregates: Aggregates, dedup_window_ms: int) -> bool:
    """Apply one call. Returns False (and changes nothing) if it is a duplicate."""
    cause = Cause(call.device_id, call.user_id, call.time, server_time, call.insert_id)
    device = aggregates.device(call.device_id)
    if device is not None and device.is_duplicate(call.insert_id, server_time, dedup_window_ms):
        return False

    if call.user_id is not None:
        target = _identity_for_user(call.user_id, device, cause, aggregates)
    elif device is not None:
        target = aggregates.identity(device.pointer)
    else:
        target = aggregates.new_identity(cause)

    if device is None:
        device = Device.seen(target.amplitude_id, cause)
        aggregates.add(device)
    else:
        device.move_pointer(target.amplitude_id, cause)
    target.link_device(cause)

    if call.operations:
        target.update_user_properties(call.operations, cause)
    if call.is_identify:
        device.identified(cause)
    else:
        device.track(call.event_type, call.event_properties, target.user_properties, cause)
    return True


def _identity_for_user(user_id: str, device: Device | None, cause: Cause, aggregates: Aggregates) -> Identity:
    """The identity a call with a user ID goes to, binding or merging on the way."""
    previous = aggregates.identity(device.pointer) if device is not None else None
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
    aggregates.add(User.bind(target.amplitude_id, cause))
    return target
