"""Stored events are a public format: explicit names that survive moves, and upcasting of old shapes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import register_topic

from ledger import IdentityLedger
from ledger.domain.deletions import DeletionJob
from ledger.domain.model import AmplitudeIdentity, AmplitudeIds, Correction, Device, Group, User, UserMapping
from ledger.domain.timeline import Timeline
from ledger.store.database import MsgspecMapper, decode_event
from tests.helpers import event

AGGREGATES = (Device, User, AmplitudeIdentity, AmplitudeIds, Timeline, DeletionJob, Correction, Group, UserMapping)


def stored_event_classes() -> list[type]:
    return [value for aggregate in AGGREGATES for value in vars(aggregate).values() if hasattr(value, "TOPIC")]


def test_every_stored_name_is_explicit_and_independent_of_the_module_path() -> None:
    names = [aggregate.STORED_AS for aggregate in AGGREGATES] + [cls.TOPIC for cls in stored_event_classes()]
    assert len(names) == len(set(names)) == 9 + 36
    assert all(":" not in name and "ledger" not in name for name in names)


def test_a_new_ledger_stores_only_the_explicit_names(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with IdentityLedger(f"sqlite:///{path}") as lg:
        lg.ingest([event("device-1", None), event("device-1", "user-1"), event("device-2", None)])
        lg.ingest([event("device-2", "user-1", groups={"org": "acme"})])
        lg.group_identify([{"group_type": "org", "group_value": "acme", "group_properties": {"plan": "pro"}}])
        lg.map_user("user-1", "user-2")
    with sqlite3.connect(path) as connection:
        topics = {row[0] for row in connection.execute("SELECT topic FROM stored_events")}
    assert topics <= {cls.TOPIC for cls in stored_event_classes()}
    assert {"Device.Seen", "User.Bound", "Identity.Merged", "Timeline.Tracked", "Identity.GroupsJoined",
            "Group.PropertiesUpdated", "UserMapping.Mapped", "UserMapping.Gained"} <= topics
    assert not topics & {"Device.Tracked", "Device.Identified"}  # 0.1.0's shapes are read, never written


class Renamed(Aggregate.Event):
    """A stand-in for an event whose shape changed twice: v1 had `name`, v2 split it, v3 added `plan`."""

    TOPIC = "Test.Renamed"
    class_version = 3
    first: str
    last: str
    plan: str

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["first"], _, state["last"] = state.pop("name").partition(" ")

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        state["plan"] = "free"


register_topic(Renamed.TOPIC, Renamed)


def test_old_shapes_are_upcast_and_new_ones_carry_their_version() -> None:
    originator = uuid4()
    v1 = msgspec.msgpack.encode({"name": "Ada Lovelace", "timestamp": None})
    old = decode_event("Test.Renamed", v1, originator, 2)
    assert (old.first, old.last, old.plan, old.originator_version) == ("Ada", "Lovelace", "free", 2)
    mapper = MsgspecMapper(transcoder=None)  # type: ignore[arg-type]
    stored = mapper.to_stored_event(old)
    assert isinstance(stored, StoredEvent) and msgspec.msgpack.decode(stored.state)["class_version"] == 3
    again = mapper.to_domain_event(stored)
    assert (again.first, again.last, again.plan) == ("Ada", "Lovelace", "free")
