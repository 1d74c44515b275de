"""Amplitude's Group Identify API: identifications in, `$groupidentify` calls out.

Each identification names one group (`group_type`, `group_value`) and the operations on its
`group_properties`. It becomes a call that touches only that group: no person is resolved, no
ID is bound and no event is counted, so it needs no device ID or user ID.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ledger.domain.calls import Accepted, Call, storable
from ledger.domain.groups import GROUP_IDENTIFY, group_operations, groups_problem
from ledger.errors import InvalidRequest

MAX_IDENTIFICATIONS = 1024
IDENTIFICATION_FIELDS = ("group_type", "group_value", "group_properties")


def accept_identifications(identifications: Iterable[Any], server_time: int) -> Accepted:
    """Validate a whole request of identifications, or raise InvalidRequest naming every bad index per field."""
    items = list(identifications)
    if len(items) > MAX_IDENTIFICATIONS:
        raise InvalidRequest.payload_too_large()
    invalid: dict[str, list[int]] = defaultdict(list)
    missing: dict[str, list[int]] = defaultdict(list)
    calls: list[Call] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            invalid["identification"].append(index)
            continue
        absent = [field for field in ("group_type", "group_value") if item.get(field) is None]
        for field in absent:
            missing[field].append(index)
        if absent:
            continue
        group_type, group_value = item["group_type"], item["group_value"]
        if not isinstance(group_type, str) or groups_problem({group_type: "name"}) is not None:
            invalid["group_type"].append(index)
            continue
        if not isinstance(group_value, str) or groups_problem({group_type: group_value}) is not None:
            invalid["group_value"].append(index)
            continue
        properties = item.get("group_properties", {})
        try:
            if not storable(properties):
                raise ValueError("not storable")
            operations = group_operations(properties)
        except ValueError:
            invalid["group_properties"].append(index)
            continue
        calls.append(Call(device_id="", user_id=None, event_type=GROUP_IDENTIFY, time=server_time, insert_id=None,
                          event_properties={}, operations={}, groups={group_type: [group_value]},
                          group_operations=operations))
    if invalid or missing:
        body: dict[str, Any] = {"code": 400, "error": "Invalid identifications"}
        if invalid:
            body["identifications_with_invalid_fields"] = dict(invalid)
        if missing:
            body["identifications_with_missing_fields"] = dict(missing)
        raise InvalidRequest(400, body)
    return Accepted(calls, [])
