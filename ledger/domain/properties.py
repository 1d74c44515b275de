"""User property operations: validating them and applying them, in one place.

Amplitude accepts either plain key/values (meaning `$set`) or an object of operations.
Both are normalised to an ordered dict of operations, then applied in that order,
`$clearAll` first.

A person's properties are stamped on every event they track, so they are bounded
(`LIMITS`): an update that would take them past a limit is refused
(`PropertyLimitExceeded`), and a merge keeps the merged identity's extra keys only
while the person stays within the limits.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

OPERATIONS = (
    "$set",
    "$setOnce",
    "$add",
    "$append",
    "$prepend",
    "$preInsert",
    "$postInsert",
    "$remove",
    "$unset",
    "$clearAll",
)

Properties = dict[str, Any]
Operations = dict[str, Any]

#: Property keys a person may have.
MAX_PROPERTIES = 1000
#: Items a list value may hold.
MAX_LIST_ITEMS = 1000
#: A person's properties, msgpack-encoded (what each of their tracked events carries).
MAX_PROPERTIES_BYTES = 16 * 1024
#: Numbers are integers of this range (signed 64-bit) or finite floats.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1

_encode = msgspec.msgpack.Encoder().encode


class PropertyLimitExceeded(ValueError):
    """An update that would take a person's properties past a documented limit."""


def encoded_size(value: Any) -> int:
    """The bytes `value` takes in the store (msgpack)."""
    return len(_encode(value))


def limit_problem(properties: Properties) -> str | None:
    """What limit a person's properties break, or None."""
    if len(properties) > MAX_PROPERTIES:
        return f"more than {MAX_PROPERTIES} user properties"
    for key, value in properties.items():
        if type(value) is list and len(value) > MAX_LIST_ITEMS:
            return f"user property {key[:64]!r} would hold more than {MAX_LIST_ITEMS} items"
    if encoded_size(properties) > MAX_PROPERTIES_BYTES:
        return f"user properties would take more than {MAX_PROPERTIES_BYTES} bytes"
    return None


def normalise_operations(user_properties: Properties) -> Operations:
    """Turn a `user_properties` object into operations; raise ValueError if malformed."""
    operations: Operations = {}
    plain: Properties = {}
    for key, value in user_properties.items():
        if not key.startswith("$"):
            plain[key] = value
        elif key not in OPERATIONS:
            raise ValueError(f"unknown user property operation {key!r}")
        elif key == "$clearAll":
            operations[key] = True
        elif key == "$unset" and isinstance(value, list):
            operations[key] = {str(name): "-" for name in value}
        elif isinstance(value, dict):
            operations[key] = value
        else:
            raise ValueError(f"{key} takes an object of properties")
    if plain:
        operations["$set"] = {**operations.get("$set", {}), **plain}
    if "$clearAll" in operations:
        operations = {"$clearAll": True, **operations}
    return operations


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def operations_problem(operations: Operations) -> str | None:
    """What limit one call's user property operations break on their own, or None."""
    if sum(len(arguments) for arguments in operations.values() if isinstance(arguments, dict)) > MAX_PROPERTIES:
        return f"more than {MAX_PROPERTIES} user properties"
    for arguments in operations.values():
        if isinstance(arguments, dict):
            problem = limit_problem(arguments)
            if problem is not None:
                return problem
    if encoded_size(operations) > MAX_PROPERTIES_BYTES:
        return f"user properties would take more than {MAX_PROPERTIES_BYTES} bytes"
    return None


def apply_operations(properties: Properties, operations: Operations) -> Properties:
    """Return the properties after the operations; the input is left untouched.

    Raises PropertyLimitExceeded if the result would break a limit (unless it is no
    larger than before, so a person over the limits can always shrink).
    """
    result = _applied(properties, operations)
    problem = limit_problem(result)
    if problem is not None and encoded_size(result) > encoded_size(properties):
        raise PropertyLimitExceeded(problem)
    return result


def _applied(properties: Properties, operations: Operations) -> Properties:
    result = dict(properties)
    for operation, arguments in operations.items():
        if operation == "$clearAll":
            result.clear()
            continue
        for key, value in arguments.items():
            current = result.get(key)
            if operation == "$set":
                result[key] = value
            elif operation == "$setOnce":
                result.setdefault(key, value)
            elif operation == "$add":
                if _is_number(value):
                    result[key] = _sum(current if isinstance(current, (int, float)) and _is_number(current) else 0, value)
            elif operation == "$unset":
                result.pop(key, None)
            else:
                result[key] = _apply_list_operation(operation, current, value)
    return result


def _sum(current: int | float, value: int | float) -> int | float:
    """`$add`, refused where the store could not hold the total."""
    total = current + value
    if isinstance(total, int) and not MIN_INT <= total <= MAX_INT:
        raise PropertyLimitExceeded(f"$add would pass the integer range {MIN_INT}..{MAX_INT}")
    if isinstance(total, float) and not math.isfinite(total):
        raise PropertyLimitExceeded("$add would pass the float range")
    return total


def _apply_list_operation(operation: str, current: Any, value: Any) -> list[Any]:
    existing = [] if current is None else _as_list(current)
    values = _as_list(value)
    if operation == "$append":
        return existing + values
    if operation == "$prepend":
        return values + existing
    if operation == "$postInsert":
        return existing + [v for v in values if v not in existing]
    if operation == "$preInsert":
        return [v for v in values if v not in existing] + existing
    # $remove
    return [v for v in existing if v not in values]


def merge_properties(live: Properties, merged: Properties) -> Properties:
    """On a merge the live identity's values win; keys only the merged one had are kept,
    in their order, as long as the person stays within the limits (the rest are dropped).
    """
    full = {**merged, **live}
    if limit_problem(full) is None:
        return full
    kept: set[str] = set()
    size = encoded_size(live) + 2  # the map header grows by at most 2 bytes below 65536 keys
    for key, value in merged.items():
        if key in live:
            continue
        item = encoded_size(key) + encoded_size(value)
        if len(live) + len(kept) < MAX_PROPERTIES and size + item <= MAX_PROPERTIES_BYTES:
            kept.add(key)
            size += item
    return {key: value for key, value in full.items() if key in live or key in kept}
