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
