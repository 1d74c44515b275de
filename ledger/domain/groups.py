"""Groups (Amplitude's Accounts): what a call's `groups` may name, and a group's properties.

A call naming groups makes its person a member of each (`AmplitudeIdentity.GroupsJoined`,
on the person's own stream). A group's properties live on the `Group` aggregate, changed by
`$groupidentify` calls with the operations of Amplitude's Group Identify API. Group facts
name no person: forgetting someone never has to touch a group's stream.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.facts import JournaledAggregate, stamp
from ledger.domain.keys import NAMESPACE
from ledger.domain.properties import Operations, Properties, apply_operations, normalise_operations, operations_problem

GROUP_IDENTIFY = "$groupidentify"
#: Amplitude's limits per call: group types, and group names over all types.
MAX_GROUP_TYPES = 5
MAX_GROUPS = 10
MAX_NAME = 1024
#: The operations the Group Identify API documents (a subset of the user property ones).
GROUP_OPERATIONS = frozenset({"$set", "$setOnce", "$add", "$append", "$prepend", "$unset"})
#: group type -> group names, in the order the call gave them.
Groups = dict[str, list[str]]


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME and "\x00" not in value


def groups_problem(value: Any) -> str | None:
    """Why a call's `groups` breaks the contract, or None: `{"type": "name" | ["name", ...]}`,
    at most 5 types and 10 names, every type and name a non-empty string of at most 1024
    characters without NUL."""
    if not isinstance(value, dict):
        return "groups must be an object of group type -> group name(s)"
    if len(value) > MAX_GROUP_TYPES:
        return f"more than {MAX_GROUP_TYPES} group types"
    names = 0
    for group_type, group_names in value.items():
        if not _is_name(group_type):
            return "a group type must be a non-empty string of at most 1024 characters without NUL"
        listed = group_names if isinstance(group_names, list) else [group_names]
        if not all(_is_name(name) for name in listed):
            return "a group name must be a non-empty string of at most 1024 characters without NUL"
        names += len(listed)
    if names > MAX_GROUPS:
        return f"more than {MAX_GROUPS} groups"
    return None


def normalise_groups(value: dict[str, Any]) -> Groups:
    """Valid `groups` (see `groups_problem`) as type -> list of distinct names."""
    return {group_type: list(dict.fromkeys(names if isinstance(names, list) else [names]))
            for group_type, names in value.items()}


def group_operations(group_properties: Any) -> Operations:
    """`group_properties` as operations (plain keys mean `$set`); ValueError names what is wrong."""
    if not isinstance(group_properties, dict):
        raise ValueError("group_properties must be an object")
    operations = normalise_operations(group_properties)
    unknown = sorted(set(operations) - GROUP_OPERATIONS)
    if unknown:
        raise ValueError(f"group_properties does not take {', '.join(unknown)}")
    problem = operations_problem(operations)
    if problem is not None:
        raise ValueError(problem.replace("user propert", "group propert"))
    return operations


def group_identify_sender(device_id: str) -> str:
    """The name a `$groupidentify` call's receipt is kept under: its device ID in a space of its own
    (NUL never occurs in a device ID). The call creates no device, and a device the store does not hold
    is assumed to have no receipts; apart, the two kinds never meet."""
    return f"\x00group\x00{device_id}"


def group_key(group_type: str, group_value: str) -> UUID:
    """A group's stored ID (length-prefixed, so that no two (type, value) pairs meet)."""
    return uuid5(NAMESPACE, f"group:{len(group_type)}:{group_type}{group_value}")


class Group(JournaledAggregate):
    """One group (a group type and a value): its properties, changed only by group identify calls."""

    STORED_AS = "Group"

    class Created(Aggregate.Created):
        TOPIC = "Group.Created"

        group_type: str
        group_value: str
        server_time: int

        def apply(self, group: Group) -> None:
            group.group_type = self.group_type
            group.group_value = self.group_value

    class PropertiesUpdated(Aggregate.Event):
        """A group identify call's operations, and the properties they left (later events see these)."""

        TOPIC = "Group.PropertiesUpdated"

        group_type: str
        group_value: str
        operations: dict[str, Any]
        group_properties: dict[str, Any]
        server_time: int

        def apply(self, group: Group) -> None:
            group.properties = self.group_properties

    def __init__(self) -> None:
        super().__init__()
        self.group_type = ""
        self.group_value = ""
        self.properties: Properties = {}

    @property
    def cache_key(self) -> tuple[str, tuple[str, str]]:
        return "group", (self.group_type, self.group_value)

    @classmethod
    def start(cls, group_type: str, group_value: str, server_time: int) -> Group:
        return cls._create(cls.Created, id=group_key(group_type, group_value), group_type=group_type,
                           group_value=group_value, server_time=server_time, timestamp=stamp(server_time))

    def update_properties(self, operations: Operations, server_time: int) -> None:
        """Apply the operations (PropertyLimitExceeded if the result would break a limit)."""
        self.trigger_event(self.PropertiesUpdated, group_type=self.group_type, group_value=self.group_value,
                           operations=operations, group_properties=apply_operations(self.properties, operations),
                           server_time=server_time, timestamp=stamp(server_time))
