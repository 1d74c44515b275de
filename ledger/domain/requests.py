"""One request's calls resolved in order, with a refusal that names the call at fault.

Validation catches every event that is bad on its own; whether a call's user property
update fits the person's limits depends on the person's state, so that is known only
while resolving. Such a call fails its whole request with Amplitude's per-event 400,
pointing at its index, so a client can drop it and send the rest again.
"""

from __future__ import annotations

import msgspec

from ledger.domain.calls import Call, IngestWarning
from ledger.domain.properties import PropertyLimitExceeded
from ledger.domain.resolution import Aggregates, resolve_call
from ledger.errors import InvalidRequest


def resolve_request(calls: list[Call], server_time: int, aggregates: Aggregates, dedup_window_ms: int,
                    warnings: list[IngestWarning]) -> int:
    """Resolve every call of one request; returns how many were duplicates (dropped).

    A call carrying a retracted user ID (docs/corrections.md) is resolved as the same call
    without it, and `warnings` gets one saying so.
    """
    duplicates = 0
    for index, call in enumerate(calls):
        if call.user_id is not None:
            user = aggregates.user(call.user_id)
            if user is not None and user.retracted:
                warnings.append(IngestWarning(index, f"user_id {call.user_id!r} was retracted by a correction: "
                                                     "the event was stored without it"))
                call = msgspec.structs.replace(call, user_id=None)
        try:
            stored = resolve_call(call, server_time, aggregates, dedup_window_ms)
        except PropertyLimitExceeded as error:
            field = "group_properties" if call.is_group_identify else "user_properties"
            raise InvalidRequest.invalid_fields({field: [index]}, f"Invalid {field}: {error}") from error
        duplicates += not stored
    return duplicates
