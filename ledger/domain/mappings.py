"""User mapping (Amplitude's aliasing): a user ID counted as another, the "global" one, until unmapped.

Mapping never touches a binding: it is a fact of its own, on a `UserMapping` stream per user
ID, so it can be audited, undone and replayed. Mappings are one level deep, like merges: a
user ID is mapped onto at most one global user ID at a time, a global user ID is never
itself mapped, and a user ID that others are mapped onto is never mapped. So a chain
(A->B, then B->C) and a cycle (A->B, then B->A) are refused, never followed or looped.
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.domain import Aggregate

from ledger.domain.facts import JournaledAggregate, stamp

MAX_MAPPINGS = 2000
MAX_USER_ID = 1024


class MappingRefused(ValueError):
    """A mapping that would make a chain or a cycle, or remap without unmapping first;
    `field` names the side at fault (`user_id` or `global_user_id`)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class MappingIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One item of a User Mapping API request: map `user_id` onto `global_user_id`, or unmap it."""

    user_id: str
    global_user_id: str | None = None
    unmap: bool = False


def mapping_problem(raw: Any) -> tuple[str, str] | MappingIn:
    """The mapping, or (field, problem) naming what is wrong with it."""
    if not isinstance(raw, dict):
        return "mapping", "must be an object"
    try:
        mapping = msgspec.convert(raw, MappingIn)
    except msgspec.ValidationError as error:
        message = str(error)
        field = next((name for name in ("global_user_id", "user_id", "unmap") if name in message), "mapping")
        return field, message
    for field in ("user_id", "global_user_id"):
        value = getattr(mapping, field)
        if value is not None and (not value or len(value) > MAX_USER_ID or "\x00" in value):
            return field, "must be a non-empty string of at most 1024 characters without NUL"
    if mapping.unmap and mapping.global_user_id is not None:
        return "global_user_id", "an unmap takes no global_user_id"
    if not mapping.unmap and mapping.global_user_id is None:
        return "global_user_id", "required unless unmap is true"
    return mapping


class UserMapping(JournaledAggregate):
    """One user ID's mapping state: the global user ID it is mapped onto, the user IDs mapped onto it."""

    STORED_AS = "UserMapping"

    class Started(Aggregate.Created):
        TOPIC = "UserMapping.Started"

        user_id: str
        server_time: int

        def apply(self, mapping: UserMapping) -> None:
            mapping.user_id = self.user_id

    class Mapped(Aggregate.Event):
        """`user_id` counts as `global_user_id` from now on; `requester` asked for it."""

        TOPIC = "UserMapping.Mapped"

        user_id: str
        global_user_id: str
        requester: str
        server_time: int

        def apply(self, mapping: UserMapping) -> None:
            mapping.global_user_id = self.global_user_id

    class Unmapped(Mapped):
        """`user_id` no longer counts as `global_user_id`."""

        TOPIC = "UserMapping.Unmapped"

        def apply(self, mapping: UserMapping) -> None:
            mapping.global_user_id = None

    class Gained(Aggregate.Event):
        """On the global user ID's stream: `mapped_user_id` is mapped onto it (what chain checks read)."""

        TOPIC = "UserMapping.Gained"

        mapped_user_id: str
        server_time: int

        def apply(self, mapping: UserMapping) -> None:
            mapping.mapped_user_ids.append(self.mapped_user_id)

    class Lost(Gained):
        TOPIC = "UserMapping.Lost"

        def apply(self, mapping: UserMapping) -> None:
            mapping.mapped_user_ids.remove(self.mapped_user_id)

    class Erased(Aggregate.Event):
        """What a fact naming a forgotten person becomes (docs/privacy.md): it names no one, changes nothing."""

        TOPIC = "UserMapping.Erased"

        def apply(self, mapping: UserMapping) -> None:
            pass

    def __init__(self) -> None:
        super().__init__()
        self.user_id = ""
        self.global_user_id: str | None = None
        self.mapped_user_ids: list[str] = []

    @property
    def cache_key(self) -> tuple[str, str]:
        return "mapping", self.user_id

    @classmethod
    def start(cls, user_id: str, key: Any, server_time: int) -> UserMapping:
        """`key` is its stored ID (`Keys.mapping` of the user ID)."""
        return cls._create(cls.Started, id=key, user_id=user_id, server_time=server_time,
                           timestamp=stamp(server_time))

    def map_onto(self, target: UserMapping, requester: str, server_time: int) -> bool:
        """Map this user ID onto `target`'s; False if it already is (a retry changes nothing)."""
        if target.user_id == self.user_id:
            raise MappingRefused(f"user ID {self.user_id!r} cannot be mapped onto itself", "global_user_id")
        if self.global_user_id == target.user_id:
            return False
        if self.global_user_id is not None:
            raise MappingRefused(f"user ID {self.user_id!r} is mapped onto {self.global_user_id!r}: unmap it first",
                                 "user_id")
        if self.mapped_user_ids:
            raise MappingRefused(f"user ID {self.user_id!r} is a global user ID (others are mapped onto it) "
                                 "and cannot itself be mapped", "user_id")
        if target.global_user_id is not None:
            raise MappingRefused(f"user ID {target.user_id!r} is itself mapped onto {target.global_user_id!r}: "
                                 "map onto that one", "global_user_id")
        self._record(self.Mapped, target, requester, server_time)
        return True

    def unmap(self, target: UserMapping, requester: str, server_time: int) -> bool:
        """Undo this user ID's mapping onto `target` (its current global user ID)."""
        if self.global_user_id is None:
            return False
        if target.user_id != self.global_user_id:
            raise ValueError("unmap from the current global user ID")
        self._record(self.Unmapped, target, requester, server_time)
        return True

    def _record(self, event_class: type[Mapped], target: UserMapping, requester: str, server_time: int) -> None:
        when = {"server_time": server_time, "timestamp": stamp(server_time)}
        self.trigger_event(event_class, user_id=self.user_id, global_user_id=target.user_id, requester=requester,
                           **when)
        target.trigger_event(self.Gained if event_class is self.Mapped else self.Lost,
                             mapped_user_id=self.user_id, **when)
