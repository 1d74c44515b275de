"""An amplitude ID's aggregate: its user ID, devices, merges, user properties, and what corrections and deletions did to it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.facts import Amendment, Cause, Fact, JournaledAggregate, RuleViolation
from ledger.domain.keys import NAMESPACE
from ledger.domain.properties import Operations, Properties, apply_operations, merge_properties


def identity_key(amplitude_id: int) -> UUID:
    return uuid5(NAMESPACE, f"identity:{amplitude_id}")


class IdentityFact(Fact):
    """A fact about one amplitude ID, named in every event so projections need no look-up."""

    amplitude_id: int


class AmplitudeIdentity(JournaledAggregate):
    """One amplitude ID: at most one user ID, its devices, merges and user properties.

    (Stored as "Identity"; the answer a reader gets is `projections.models.Identity`.)
    """

    STORED_AS = "Identity"

    class Created(Aggregate.Created, IdentityFact):
        """A new amplitude ID, first used by the calling device (so that device is linked too)."""

        TOPIC = "Identity.Created"

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.amplitude_id = self.amplitude_id
            identity.device_ids.append(self.device_id)

    class UserIdRecorded(IdentityFact):
        """This identity now carries the calling user ID (it never changes again)."""

        TOPIC = "Identity.UserIdRecorded"

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.user_id = self.user_id

    class DeviceLinked(IdentityFact):
        """The calling device used this amplitude ID for the first time."""

        TOPIC = "Identity.DeviceLinked"

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.device_ids.append(self.device_id)

    class UserPropertiesUpdated(IdentityFact):
        TOPIC = "Identity.UserPropertiesUpdated"

        operations: dict[str, Any]
        user_properties: dict[str, Any]

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.user_properties = self.user_properties

    class GroupsJoined(IdentityFact):
        """The call named groups this person was not yet a member of: a member from this call on."""

        TOPIC = "Identity.GroupsJoined"

        groups: dict[str, list[str]]

        def apply(self, identity: AmplitudeIdentity) -> None:
            for group_type, names in self.groups.items():
                identity.groups.setdefault(group_type, []).extend(names)

    class Merged(IdentityFact):
        """This anonymous identity is the same person as `merged_amplitude_id` (the live one)."""

        TOPIC = "Identity.Merged"

        merged_amplitude_id: int

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.merged_into = self.merged_amplitude_id

    class Absorbed(IdentityFact):
        """The anonymous `absorbed_amplitude_id` was merged into this one; its properties were folded in."""

        TOPIC = "Identity.Absorbed"

        absorbed_amplitude_id: int
        user_properties: dict[str, Any]

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.merged_amplitude_ids.append(self.absorbed_amplitude_id)
            identity.user_properties = self.user_properties

    class Forgotten(Aggregate.Created):
        """The tombstone of a forgotten amplitude ID: its stream's only event, at its first one's place.

        Holds no personal data: the amplitude ID and the day of the deletion job that forgot it.
        """

        TOPIC = "Identity.Forgotten"

        amplitude_id: int
        job_day: str

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.amplitude_id = self.amplitude_id
            identity.forgotten = True

    class SplitOff(Aggregate.Created, Amendment):
        """A correction made this amplitude ID for one re-resolved person, with that person's state.

        `tracked` and `identified` are the log positions of the calls now attributed to it (tracked
        events and identify calls); `moved_before` are those an earlier correction had moved already.
        """

        TOPIC = "Identity.SplitOff"

        amplitude_id: int
        user_id: str | None
        device_ids: list[str]
        user_properties: dict[str, Any]
        split_from: list[int]
        tracked: list[int]
        identified: list[int]
        moved_before: list[int]

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.amplitude_id = self.amplitude_id
            identity.user_id = self.user_id
            identity.device_ids.extend(self.device_ids)
            identity.user_properties = self.user_properties
            identity.split_from = tuple(self.split_from)

    class Retired(Amendment):
        """A correction gave this amplitude ID's events to other ones; `merged_into`, if any, is undone."""

        TOPIC = "Identity.Retired"

        amplitude_id: int
        user_id: str | None
        merged_into: int | None
        split_into: list[int]

        def apply(self, identity: AmplitudeIdentity) -> None:
            identity.retired = True

    #: Whether a correction retired this amplitude ID (no device points at it, no user ID is bound to it).
    retired = False
    #: The retired amplitude IDs a correction made this one from (`SplitOff`); their streams hold its history.
    split_from: tuple[int, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.amplitude_id = 0
        #: Forgotten by a deletion job: no user ID, devices or properties, and nothing is added again.
        self.forgotten = False
        self.user_id: str | None = None
        self.device_ids: list[str] = []
        self.merged_into: int | None = None
        self.merged_amplitude_ids: list[int] = []
        self.user_properties: Properties = {}
        #: group type -> the groups of that type this amplitude ID joined, in joining order.
        self.groups: dict[str, list[str]] = {}

    @classmethod
    def create(cls, amplitude_id: int, cause: Cause) -> AmplitudeIdentity:
        return cls._create(cls.Created, id=identity_key(amplitude_id), amplitude_id=amplitude_id, **cause.fields)

    def _record(self, event_class: type[IdentityFact], cause: Cause, **fields: Any) -> None:
        self.trigger_event(event_class, amplitude_id=self.amplitude_id, **fields, **cause.fields)

    def _check_not_forgotten(self) -> None:
        if self.forgotten:
            raise RuleViolation(f"amplitude ID {self.amplitude_id} was forgotten")

    def _check_live(self) -> None:
        self._check_not_forgotten()
        if self.merged_into is not None:
            raise RuleViolation(f"amplitude ID {self.amplitude_id} was merged into {self.merged_into}")

    def record_user_id(self, cause: Cause) -> None:
        self._check_live()
        if cause.user_id is None:
            raise RuleViolation("only a call with a user ID can record one")
        if self.user_id is not None:
            raise RuleViolation(f"amplitude ID {self.amplitude_id} already carries user ID {self.user_id!r}")
        self._record(self.UserIdRecorded, cause)

    def link_device(self, cause: Cause) -> None:
        self._check_not_forgotten()
        if cause.device_id not in self.device_ids:
            self._record(self.DeviceLinked, cause)

    def update_user_properties(self, operations: Operations, cause: Cause) -> None:
        self._check_live()
        updated = apply_operations(self.user_properties, operations)
        self._record(self.UserPropertiesUpdated, cause, operations=operations, user_properties=updated)

    def join_groups(self, groups: dict[str, list[str]], cause: Cause) -> None:
        """Record membership of the groups it is not yet a member of (membership is never ended)."""
        self._check_live()
        new = {group_type: [name for name in names if name not in self.groups.get(group_type, ())]
               for group_type, names in groups.items()}
        new = {group_type: names for group_type, names in new.items() if names}
        if new:
            self._record(self.GroupsJoined, cause, groups=new)

    def merge_into(self, live: AmplitudeIdentity, cause: Cause) -> None:
        """Merge this anonymous identity into `live`, which must carry a user ID."""
        self._check_live()
        live._check_live()
        if self.user_id is not None:
            raise RuleViolation(f"amplitude ID {self.amplitude_id} carries a user ID and is never merged")
        if live.user_id is None:
            raise RuleViolation(f"amplitude ID {live.amplitude_id} has no user ID to merge into")
        self._record(self.Merged, cause, merged_amplitude_id=live.amplitude_id)
        live._record(
            live.Absorbed,
            cause,
            absorbed_amplitude_id=self.amplitude_id,
            user_properties=merge_properties(live.user_properties, self.user_properties),
        )
