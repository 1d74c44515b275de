"""The identity model: devices, user-ID bindings, identities (amplitude IDs) and the allocator.

Every fact is a past-tense event that carries the call that caused it (device ID,
event time, server receipt time, insert_id). The aggregates guard their own
invariants (a binding is made once, only anonymous identities are merged, ...);
`ledger.resolution` decides which commands a call issues.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from functools import cache, lru_cache
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic

from ledger.domain.keys import NAMESPACE
from ledger.domain.properties import Operations, Properties, apply_operations, merge_properties
from ledger.domain.timeline import Timeline


def identity_key(amplitude_id: int) -> UUID:
    return uuid5(NAMESPACE, f"identity:{amplitude_id}")


ALLOCATOR_KEY = uuid5(NAMESPACE, "amplitude-ids")

DEFAULT_DEDUP_WINDOW_MS = 7 * 24 * 3600 * 1000
#: How long a device remembers insert_ids: the longest duplicate window one may configure.
MAX_DEDUP_WINDOW_MS = 30 * 24 * 3600 * 1000


class RuleViolation(Exception):
    """A command that would break an identity invariant; a bug in the caller, never input."""


@lru_cache(maxsize=8)
def _utc(milliseconds: int) -> datetime:
    """Events are stamped with the server receipt time, so a replay of the same calls is identical."""
    return datetime.fromtimestamp(milliseconds / 1000, timezone.utc)


class Cause:
    """The call behind a fact: its device ID and user ID as sent, its times and insert_id."""

    __slots__ = ("device_id", "user_id", "event_time", "server_time", "insert_id", "_fields")

    def __init__(self, device_id: str, user_id: str | None, event_time: int, server_time: int,
                 insert_id: str | None) -> None:
        self.device_id = device_id
        self.user_id = user_id
        self.event_time = event_time
        self.server_time = server_time
        self.insert_id = insert_id
        self._fields: dict[str, Any] | None = None

    @property
    def fields(self) -> dict[str, Any]:
        """The fields every identity fact this call causes carries (see `Fact`).

        Built on first use: most calls (anonymous events on known devices) cause no identity fact.
        """
        if self._fields is None:
            self._fields = {
                "device_id": self.device_id,
                "user_id": self.user_id,
                "event_time": self.event_time,
                "server_time": self.server_time,
                "insert_id": self.insert_id,
                "timestamp": _utc(self.server_time),
            }
        return self._fields


@cache
def _field_names(event_class: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(event_class))


def _new_event(event_class: type, fields: dict[str, Any]) -> Any:
    """Build a frozen event without its dataclass __init__ (a third of ingest time on 3.11).

    The set of fields is still checked, so a missing or misspelt one fails loudly.
    """
    if fields.keys() != _field_names(event_class):
        raise TypeError(f"{event_class.__qualname__} takes {sorted(_field_names(event_class))}, got {sorted(fields)}")
    event = object.__new__(event_class)
    object.__setattr__(event, "__dict__", fields)
    return event


class JournaledAggregate(Aggregate):
    """An aggregate that also appends each new event to the journal of the request it is in.

    One request touches several aggregates; the journal keeps its events in the
    order they happened, which is the order the log (and the audit trail) shows.
    Events are built by `_new_event`; loading from the store still goes through
    eventsourcing's own `mutate`.
    """

    #: The aggregate's stored name (events name their class in `TOPIC`). Not called
    #: TOPIC: eventsourcing would then demand one on the `Created` class it adds itself.
    STORED_AS = ""

    def __init__(self) -> None:
        self.journal: list[Any] | None = None

    @classmethod
    def _create(cls, event_class: Any, *, id: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        kwargs.update(originator_topic=cls.STORED_AS, originator_id=id, originator_version=cls.INITIAL_VERSION)
        event = _new_event(event_class, kwargs)
        aggregate = cls.__new__(cls)
        aggregate.__base_init__(id, cls.INITIAL_VERSION, event.timestamp)
        aggregate.__init__()
        event.apply(aggregate)
        aggregate.pending_events.append(event)
        return aggregate

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        # The originator ID and next version are set here, so eventsourcing's `mutate`
        # checks of both could never fail: apply directly.
        version = self._version + 1
        kwargs["originator_id"] = self._id
        kwargs["originator_version"] = version
        event = _new_event(event_class, kwargs)
        event.apply(self)
        self._version = version
        self._modified_on = event.timestamp
        self._pending_events.append(event)
        if self.journal is not None:
            self.journal.append(event)


class Fact(Aggregate.Event):
    """Base of every ledger event: which call caused it (its IDs as sent), and when."""

    device_id: str
    user_id: str | None
    event_time: int
    server_time: int
    insert_id: str | None


class Amendment(Aggregate.Event):
    """Base of the facts a correction records (docs/corrections.md): which correction, and when.

    A correction is named by the user ID it retracted (each user ID is retracted at most once);
    its facts are not caused by a call, so they carry no call's IDs.
    """

    correction: str
    server_time: int


def amendment_fields(correction: str, server_time: int) -> dict[str, Any]:
    """The fields every fact of one correction carries."""
    return {"correction": correction, "server_time": server_time, "timestamp": _utc(server_time)}


class Device(JournaledAggregate):
    """One device ID: its pointer (where the next anonymous event goes).

    Its stream holds only identity facts, so loading a device costs what its identity
    history costs, however many events it sends: tracked events and identify calls are
    stored on their amplitude ID's `Timeline` streams. Ledgers written by 0.1.0 kept them
    here (`Tracked`, `Identified`); those are still read, and their insert_ids still count
    as duplicates within the window.
    """

    STORED_AS = "Device"

    class Seen(Aggregate.Created, Fact):
        TOPIC = "Device.Seen"

        amplitude_id: int

        def apply(self, device: Device) -> None:
            device.device_id = self.device_id
            device.pointer = self.amplitude_id
            device.amplitude_ids.append(self.amplitude_id)

    class PointerMoved(Fact):
        TOPIC = "Device.PointerMoved"

        amplitude_id: int
        previous_amplitude_id: int

        def apply(self, device: Device) -> None:
            device.point_to(self.amplitude_id)

    class Tracked(Fact):
        """0.1.0's tracked event (read only): the event, stamped as in `Timeline.Tracked`."""

        TOPIC = "Device.Tracked"

        amplitude_id: int
        event_type: str
        event_properties: dict[str, Any]
        user_properties: dict[str, Any]

        def apply(self, device: Device) -> None:
            device.remember(self.insert_id, self.server_time)

    class Identified(Fact):
        """0.1.0's record of an identify call on this device (read only)."""

        TOPIC = "Device.Identified"

        amplitude_id: int

        def apply(self, device: Device) -> None:
            device.remember(self.insert_id, self.server_time)

    class Forgotten(Aggregate.Event):
        """Written in place of a forgotten person's 0.1.0 `Tracked`/`Identified` event on a device
        shared with someone else: the stream keeps its versions, the person's data is gone."""

        TOPIC = "Device.Forgotten"

        amplitude_id: int

        def apply(self, device: Device) -> None:
            pass

    class Repointed(Amendment):
        """A correction moved the pointer: the device's next anonymous event goes to `amplitude_id`."""

        TOPIC = "Device.Repointed"

        device_id: str
        amplitude_id: int
        previous_amplitude_id: int

        def apply(self, device: Device) -> None:
            device.point_to(self.amplitude_id)

    def __init__(self) -> None:
        super().__init__()
        self.device_id = ""
        self.pointer = 0
        self.amplitude_ids: list[int] = []
        #: insert_ids of 0.1.0's events on this stream (newer ones are in the store's receipts).
        self.recent_insert_ids: dict[str, int] = {}

    @classmethod
    def seen(cls, amplitude_id: int, cause: Cause, key: UUID) -> Device:
        """A new device; `key` is its stored ID (`Keys.device` of the device ID)."""
        return cls._create(cls.Seen, id=key, amplitude_id=amplitude_id, **cause.fields)

    def move_pointer(self, amplitude_id: int, cause: Cause) -> None:
        if amplitude_id != self.pointer:
            self.trigger_event(
                self.PointerMoved, amplitude_id=amplitude_id, previous_amplitude_id=self.pointer, **cause.fields
            )

    def point_to(self, amplitude_id: int) -> None:
        self.pointer = amplitude_id
        if amplitude_id not in self.amplitude_ids:
            self.amplitude_ids.append(amplitude_id)

    def remember(self, insert_id: str | None, server_time: int) -> None:
        if insert_id is not None:
            self.recent_insert_ids[insert_id] = server_time


class User(JournaledAggregate):
    """A user ID's binding to one amplitude ID. Created once: a second creation collides in the store."""

    STORED_AS = "User"

    class Bound(Aggregate.Created, Fact):
        """The call's user ID is bound to `amplitude_id`, forever."""

        TOPIC = "User.Bound"

        amplitude_id: int

        def apply(self, user: User) -> None:
            user.user_id = self.user_id or ""
            user.amplitude_id = self.amplitude_id

    class Retracted(Amendment):
        """A correction retracted this user ID: calls carrying it are resolved as if it were absent."""

        TOPIC = "User.Retracted"

        user_id: str
        amplitude_id: int

        def apply(self, user: User) -> None:
            user.retracted = True

    class Rebound(Amendment):
        """A correction re-resolved this user ID's person: it is bound to `amplitude_id` from now on."""

        TOPIC = "User.Rebound"

        user_id: str
        amplitude_id: int
        previous_amplitude_id: int

        def apply(self, user: User) -> None:
            user.amplitude_id = self.amplitude_id

    #: Whether a correction retracted this user ID (a class default: users loaded from old logs have it).
    retracted = False

    def __init__(self) -> None:
        super().__init__()
        self.user_id = ""
        self.amplitude_id = 0

    @classmethod
    def bind(cls, amplitude_id: int, cause: Cause, key: UUID) -> User:
        """Bind the calling user ID to `amplitude_id`; `key` is its stored ID (`Keys.user` of the user ID)."""
        if cause.user_id is None:
            raise RuleViolation("only a call with a user ID can bind one")
        return cls._create(cls.Bound, id=key, amplitude_id=amplitude_id, **cause.fields)


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


class AmplitudeIds(JournaledAggregate):
    """The allocator: each request that creates identities reserves its IDs here.

    Reserving in the same transaction as the request makes amplitude IDs consecutive
    in arrival order, unique across writer processes (a concurrent reservation
    collides on this aggregate's version and is retried), and never reused.
    """

    STORED_AS = "AmplitudeIds"

    class Started(Aggregate.Created):
        TOPIC = "AmplitudeIds.Started"

        next_amplitude_id: int

        def apply(self, allocator: AmplitudeIds) -> None:
            allocator.next_amplitude_id = self.next_amplitude_id

    class Reserved(Aggregate.Event):
        TOPIC = "AmplitudeIds.Reserved"

        next_amplitude_id: int

        def apply(self, allocator: AmplitudeIds) -> None:
            allocator.next_amplitude_id = self.next_amplitude_id

    def __init__(self) -> None:
        super().__init__()
        self.next_amplitude_id = 1

    @classmethod
    def start(cls, server_time: int) -> AmplitudeIds:
        return cls._create(cls.Started, id=ALLOCATOR_KEY, next_amplitude_id=1, timestamp=_utc(server_time))

    def reserve(self, count: int, server_time: int) -> None:
        self.trigger_event(self.Reserved, next_amplitude_id=self.next_amplitude_id + count,
                           timestamp=_utc(server_time))


class Correction(JournaledAggregate):
    """One retraction of a user ID (docs/corrections.md): who asked, why, when, and what it changed.

    Its ID derives from the retracted user ID, so retracting one twice collides in the store.
    """

    STORED_AS = "Correction"

    class Retracted(Aggregate.Created):
        TOPIC = "Correction.Retracted"

        user_id: str
        amplitude_id: int
        reason: str
        requester: str
        server_time: int
        summary: dict[str, Any]

    @classmethod
    def retract(cls, user_id: str, amplitude_id: int, reason: str, requester: str, server_time: int,
                summary: dict[str, Any]) -> Correction:
        return cls._create(cls.Retracted, id=correction_key(user_id), user_id=user_id, amplitude_id=amplitude_id,
                           reason=reason, requester=requester, server_time=server_time, summary=summary,
                           timestamp=_utc(server_time))


def correction_key(user_id: str) -> UUID:
    return uuid5(NAMESPACE, "correction:" + user_id)


def register_topics(*aggregates: Any) -> None:
    """Make every stored name resolvable, including the ones release 0.1.0 wrote.

    Names are explicit (`STORED_AS`, `TOPIC`), so moving a class never renames its stored
    events; 0.1.0 stored `ledger.domain:<qualname>`, which maps to the same classes.
    """
    for aggregate in aggregates:
        events = [value for value in vars(aggregate).values()
                  if getattr(value, "TOPIC", "").startswith(aggregate.STORED_AS + ".")]
        for name, cls in [(aggregate.STORED_AS, aggregate), *((event.TOPIC, event) for event in events)]:
            register_topic(name, cls)
            register_topic("ledger.domain:" + name, cls)


register_topics(Device, User, AmplitudeIdentity, AmplitudeIds, Timeline, Correction)
