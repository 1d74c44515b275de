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
        return target
