"""User property operations: validating them and applying them, in one place.

Amplitude accepts either plain key/values (meaning `$set`) or an object of operations.
Both are normalised to an ordered dict of operations, then applied in that order,
`$clearAll` first.
"""

from __future__ import annotations

from typing import Any

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


def apply_operations(properties: Properties, operations: Operations) -> Properties:
    """Return the properties after the operations; the input is left untouched."""
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
                    result[key] = (current if _is_number(current) else 0) + value
            elif operation == "$unset":
                result.pop(key, None)
            else:
                result[key] = _apply_list_operation(operation, current, value)
    return result


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
    """On a merge the live identity's values win; keys only the merged one had are kept."""
    return {**merged, **live}
