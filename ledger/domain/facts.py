"""What every stored fact and aggregate of the identity model shares.

A fact is a past-tense event carrying the call that caused it (`Cause`: device ID, user ID,
times, insert_id), or, for a correction's facts, which correction made it (`Amendment`). Events
are built without their dataclass __init__ (`new_event`), and every stored name is explicit
(`register_topics`), so moving a class never renames what is stored.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any, Self

from eventsourcing.domain import Aggregate
from eventsourcing.utils import register_topic


class RuleViolation(Exception):
    """A command that would break an identity invariant; a bug in the caller, never input."""


@lru_cache(maxsize=8)
def stamp(milliseconds: int) -> datetime:
    """Events are stamped with the server receipt time, so a replay of the same calls is identical."""
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


class Cause:
    """The call behind a fact: its device ID and user ID as sent, its times and insert_id."""

    __slots__ = ("_fields", "device_id", "event_time", "insert_id", "server_time", "user_id")

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
                "timestamp": stamp(self.server_time),
            }
        return self._fields


@cache
def _field_names(event_class: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(event_class))


def new_event(event_class: type, fields: dict[str, Any]) -> Any:
    """Build a frozen event without its dataclass __init__ (a third of ingest time on 3.11).

    The set of fields is still checked, so a missing or misspelt one fails loudly.
    """
    if fields.keys() != _field_names(event_class):
        raise TypeError(f"{event_class.__qualname__} takes {sorted(_field_names(event_class))}, got {sorted(fields)}")
    event: Any = object.__new__(event_class)
    object.__setattr__(event, "__dict__", fields)
    return event


class JournaledAggregate(Aggregate):
    """An aggregate that also appends each new event to the journal of the request it is in.

    One request touches several aggregates; the journal keeps its events in the
    order they happened, which is the order the log (and the audit trail) shows.
    Events are built by `new_event`; loading from the store still goes through
    eventsourcing's own `mutate`.
    """

    #: The aggregate's stored name (events name their class in `TOPIC`). Not called
    #: TOPIC: eventsourcing would then demand one on the `Created` class it adds itself.
    STORED_AS = ""

    def __init__(self) -> None:
        self.journal: list[Any] | None = None

    @classmethod
    def _create(cls, event_class: Any, *, id: Any = None, **kwargs: Any) -> Self:
        kwargs.update(originator_topic=cls.STORED_AS, originator_id=id, originator_version=cls.INITIAL_VERSION)
        event = new_event(event_class, kwargs)
        aggregate = cls.__new__(cls)
        aggregate.__base_init__(id, cls.INITIAL_VERSION, event.timestamp)
        cls.__init__(aggregate)
        event.apply(aggregate)
        aggregate.pending_events.append(event)
        return aggregate

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        # The originator ID and next version are set here, so eventsourcing's `mutate`
        # checks of both could never fail: apply directly.
        version = self._version + 1
        kwargs["originator_id"] = self._id
        kwargs["originator_version"] = version
        event = new_event(event_class, kwargs)
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
    return {"correction": correction, "server_time": server_time, "timestamp": stamp(server_time)}


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
