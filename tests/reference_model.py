"""An independent, deliberately naive re-statement of the resolution rule of docs/rules.md, used as a test oracle."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReferenceModel:
    """Plain dicts, no events, no storage: what each call's amplitude ID must be."""

    pointer: dict[str, int] = field(default_factory=dict)
    binding: dict[str, int] = field(default_factory=dict)
    user_of: dict[int, str] = field(default_factory=dict)
    merged_into: dict[int, int] = field(default_factory=dict)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    #: The amplitude ID each remembered (device ID, insert_id) went to.
    seen_by: dict[tuple[str, str], int] = field(default_factory=dict)
    forgotten: set[int] = field(default_factory=set)
    next_id: int = 1

    def _new(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def call(self, device_id: str, user_id: str | None, insert_id: str | None, now: int) -> int | None:
        """The amplitude ID the call goes to, or None for a duplicate."""
        if insert_id is not None and (device_id, insert_id) in self.seen:
            return None
        if user_id is not None:
            previous = self.pointer.get(device_id)
            if user_id in self.binding:
                target = self.binding[user_id]
                if previous is not None and previous != target and previous not in self.user_of:
                    self.merged_into[previous] = target
            else:
                target = previous if previous is not None and previous not in self.user_of else self._new()
                self.binding[user_id] = target
                self.user_of[target] = user_id
        elif device_id in self.pointer:
            target = self.pointer[device_id]
        else:
            target = self._new()
        self.pointer[device_id] = target
        if insert_id is not None:
            self.seen[(device_id, insert_id)] = now
            self.seen_by[(device_id, insert_id)] = target
        return target

    def known(self, amplitude_id: int) -> bool:
        return 0 < amplitude_id < self.next_id and amplitude_id not in self.forgotten

    def forget(self, amplitude_id: int) -> set[int]:
        """Forget the whole person `amplitude_id` belongs to; returns their amplitude IDs.

        Nothing of them stays: bindings, merges, their insert_ids; a device pointing to them
        starts a new person on its next call, as a new device does.
        """
        live = self.merged_into.get(amplitude_id, amplitude_id)
        person = {live} | {merged for merged, into in self.merged_into.items() if into == live}
        self.forgotten |= person
        self.binding = {user_id: target for user_id, target in self.binding.items() if target not in person}
        self.user_of = {target: user_id for target, user_id in self.user_of.items() if target not in person}
        self.merged_into = {merged: into for merged, into in self.merged_into.items() if merged not in person}
        self.pointer = {device_id: target for device_id, target in self.pointer.items() if target not in person}
        gone = [key for key, target in self.seen_by.items() if target in person]
        for key in gone:
            del self.seen[key], self.seen_by[key]
        return person


@dataclass
class MappingModel:
    """User mapping restated naively (docs/rules.md, User mapping): user ID -> global user ID, one level deep."""

    global_of: dict[str, str] = field(default_factory=dict)

    def refuses(self, user_id: str, global_user_id: str) -> bool:
        """Whether mapping `user_id` onto `global_user_id` makes a chain, a cycle, a remap or a self-map."""
        if self.global_of.get(user_id) == global_user_id:
            return False
        return (user_id == global_user_id or user_id in self.global_of or global_user_id in self.global_of
                or user_id in self.global_of.values())

    def map(self, user_id: str, global_user_id: str) -> None:
        self.global_of[user_id] = global_user_id

    def unmap(self, user_id: str) -> None:
        self.global_of.pop(user_id, None)

    def mapped_onto(self, global_user_id: str) -> list[str]:
        return sorted(user_id for user_id, target in self.global_of.items() if target == global_user_id)

    def forget(self, user_id: str) -> None:
        """A forgotten user ID leaves no mapping naming it, on either side."""
        self.global_of = {mapped: target for mapped, target in self.global_of.items() if user_id not in (mapped, target)}
