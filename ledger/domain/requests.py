"""One request's calls resolved in order, with a refusal that names the call at fault.

Validation catches every event that is bad on its own; whether a call's user property
update fits the person's limits depends on the person's state, so that is known only
while resolving. Such a call fails its whole request with Amplitude's per-event 400,
pointing at its index, so a client can drop it and send the rest again.
"""

from __future__ import annotations

from ledger.domain.calls import Call
from ledger.domain.properties import PropertyLimitExceeded
from ledger.domain.resolution import Aggregates, resolve_call
from ledger.errors import InvalidRequest


def resolve_request(calls: list[Call], server_time: int, aggregates: Aggregates, dedup_window_ms: int) -> int:
    """Resolve every call of one request; returns how many were duplicates (dropped)."""
    duplicates = 0
    for index, call in enumerate(calls):
        try:
            stored = resolve_call(call, server_time, aggregates, dedup_window_ms)
        except PropertyLimitExceeded as error:
            raise InvalidRequest.invalid_fields({"user_properties": [index]}, f"Invalid user_properties: {error}") from error
        duplicates += not stored
    return duplicates
