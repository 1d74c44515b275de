"""Re-resolving stored calls without a retracted user ID, in a scratch world (docs/corrections.md).

A call's resolution depends only on its device's state and its user ID's binding, so the calls
of a set of people that share no device and no user ID with anyone else can be resolved again
on their own, in arrival order, with the rule itself (`resolve_call`) over in-memory aggregates.
The people that come out are compared with the people those calls belong to now: one whose
calls are unchanged keeps its amplitude ID; every other one is new. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from ledger.domain.calls import Call
from ledger.domain.keys import UNKEYED
from ledger.domain.model import AmplitudeIdentity, Cause, Device, Group, User
from ledger.domain.resolution import resolve_call


@dataclass(frozen=True)
class StoredCall:
    """A stored call as it arrived, and the person it counts for now."""

    position: int
    call: Call
    server_time: int
    #: The amplitude ID it counts for now (its stream's, or the one a correction gave it).
    amplitude_id: int
    #: The live amplitude ID of its person now.
    person: int
    #: Whether an earlier correction attributed it to another amplitude ID than its stream's.
    reattributed: bool = False

    @property
    def tracked(self) -> bool:
        return not self.call.is_identify


@dataclass
class Person:
    """One person as the scratch world resolved them: their calls and their state."""

    calls: list[StoredCall]
    user_id: str | None
    device_ids: list[str]
    user_properties: dict[str, Any]
    #: The live amplitude ID they keep (their calls are those of a person now), else None: a new one.
    keeps: int | None = None
    #: Their calls (as re-resolved) that named groups: a new amplitude ID joins those groups again.
    joined: list[Call] = field(default_factory=list)


@dataclass
class Regrouping:
    """The people the calls make without the retracted user IDs, and where each device points."""

    people: list[Person]
    #: device ID -> index in `people` of the person its next anonymous event goes to.
    pointers: dict[str, int]
    #: The live amplitude IDs of the people now who do not survive unchanged.
    changed: list[int] = field(default_factory=list)


class Scratch:
    """An `Aggregates` in memory with its own allocator: a world that saw only the given calls."""

    #: Its aggregates are never stored, so their stored keys need no secret.
    keys = UNKEYED

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.users: dict[str, User] = {}
        self.identities: dict[int, AmplitudeIdentity] = {}
        #: The amplitude ID the last resolved call went to.
        self.last_target = 0

    def device(self, device_id: str) -> Device | None:
        return self.devices.get(device_id)

    def user(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def identity(self, amplitude_id: int) -> AmplitudeIdentity:
        return self.identities[amplitude_id]

    def new_identity(self, cause: Cause) -> AmplitudeIdentity:
        identity = AmplitudeIdentity.create(len(self.identities) + 1, cause)
        self.identities[identity.amplitude_id] = identity
        return identity

    def group(self, group_type: str, group_value: str) -> Group | None:
        """Never asked: group identify calls are not re-resolved (a call's groups join no `Group`)."""
        raise NotImplementedError

    def add(self, aggregate: Device | User | Group) -> None:
        if isinstance(aggregate, Device):
            self.devices[aggregate.device_id] = aggregate
        elif isinstance(aggregate, User):
            self.users[aggregate.user_id] = aggregate

    def last_received(self, device_id: str, insert_id: str) -> int | None:
        return None  # every stored call was stored once: none is a duplicate of another

    def append(self, kind: type[Any], amplitude_id: int, state: dict[str, Any]) -> None:
        self.last_target = amplitude_id

    def receive(self, device_id: str, insert_id: str, server_time: int) -> None:
        """Never asked: group identify calls are not re-resolved."""
        raise NotImplementedError

    def live(self, amplitude_id: int) -> int:
        merged_into = self.identities[amplitude_id].merged_into
        return amplitude_id if merged_into is None else merged_into


def regroup(calls: list[StoredCall], retracted: set[str], user_id: str) -> Regrouping:
    """Resolve `calls` (in log order) as if no call had carried a user ID of `retracted`.

    `user_id` is the one being retracted now: a person any of whose calls carried it is new.
    """
    scratch = Scratch()
    owners: dict[int, list[StoredCall]] = {}
    resolved: dict[int, Call] = {}
    for stored in calls:
        call = stored.call
        if call.user_id in retracted:
            call = msgspec.structs.replace(call, user_id=None)
        resolve_call(call, stored.server_time, scratch, 0)
        owners.setdefault(scratch.last_target, []).append(stored)
        resolved[stored.position] = call
    people_by_live: dict[int, Person] = {}
    for amplitude_id, owned in owners.items():
        live = scratch.live(amplitude_id)
        person = people_by_live.get(live)
        if person is None:
            identity = scratch.identity(live)
            person = people_by_live[live] = Person([], identity.user_id, [], dict(identity.user_properties))
        person.calls.extend(owned)
    now: dict[int, set[int]] = {}
    for stored in calls:
        now.setdefault(stored.person, set()).add(stored.position)
    kept = set()
    for person in people_by_live.values():
        person.calls.sort(key=lambda stored: stored.position)
        person.device_ids = list(dict.fromkeys(stored.call.device_id for stored in person.calls))
        person.joined = [resolved[stored.position] for stored in person.calls if stored.call.groups]
        current = person.calls[0].person
        if (now[current] == {stored.position for stored in person.calls}
                and all(stored.call.user_id != user_id for stored in person.calls)):
            person.keeps = current
            kept.add(current)
    people = list(people_by_live.values())
    index = {live: number for number, live in enumerate(people_by_live)}
    pointers = {device_id: index[scratch.live(device.pointer)] for device_id, device in scratch.devices.items()}
    return Regrouping(people, pointers, [person for person in now if person not in kept])
