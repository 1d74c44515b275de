"""The identity rules on the domain alone: no database, aggregates held in a dict."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.calls import accept
from ledger.domain.keys import Keys
from ledger.domain.model import AmplitudeIdentity, Cause, Device, RuleViolation, User
from ledger.domain.resolution import resolve_call

WEEK = 7 * 24 * 3600 * 1000


class InMemory:
    """The `Aggregates` protocol over plain dicts; keeps every event, in order."""

    def __init__(self) -> None:
        self.keys = Keys(bytes(32))
        self.aggregates: dict[tuple[str, Any], Any] = {}
        self.next_amplitude_id = 1
        self.timelines: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.received: dict[tuple[str, str], int] = {}

    def device(self, device_id: str) -> Device | None:
        return self.aggregates.get(("device", device_id))

    def user(self, user_id: str) -> User | None:
        return self.aggregates.get(("user", user_id))

    def identity(self, amplitude_id: int) -> AmplitudeIdentity:
        return self.aggregates[("identity", amplitude_id)]

    def new_identity(self, cause: Cause) -> AmplitudeIdentity:
        identity = AmplitudeIdentity.create(self.next_amplitude_id, cause)
        self.next_amplitude_id += 1
        self.aggregates[("identity", identity.amplitude_id)] = identity
        return identity

    def add(self, aggregate: Device | User) -> None:
        key = ("device", aggregate.device_id) if isinstance(aggregate, Device) else ("user", aggregate.user_id)
        self.aggregates[key] = aggregate

    def last_received(self, device_id: str, insert_id: str) -> int | None:
        return self.received.get((device_id, insert_id))

    def append(self, kind: type[Any], amplitude_id: int, state: dict[str, Any]) -> None:
        self.timelines.setdefault((kind.TOPIC, amplitude_id), []).append(state)
        if state["insert_id"] is not None:
            self.receive(state["device_id"], state["insert_id"], state["server_time"])

    def receive(self, device_id: str, insert_id: str, server_time: int) -> None:
        self.received[(device_id, insert_id)] = server_time


def run(world: InMemory, rows: list[tuple[str, str | None]], now: int = 1_000) -> list[int]:
    given = []
    for device_id, user_id in rows:
        event = {"event_type": "view", "device_id": device_id, **({"user_id": user_id} if user_id else {})}
        [call] = accept([event], server_time=now, min_id_length=1).calls
        assert resolve_call(call, now, world, WEEK)
        given.append(world.device(device_id).pointer)  # type: ignore[union-attr]
    return given


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k not in ("_pending_events", "journal")}


def test_case_5_merges_on_the_domain_alone() -> None:
    world = InMemory()
    assert run(world, [("Y", "David"), ("Z", None), ("Z", "David"), ("Z", None)]) == [1, 2, 1, 1]
    merged, live = world.identity(2), world.identity(1)
    assert (merged.merged_into, live.merged_amplitude_ids, live.device_ids) == (1, [2], ["Y", "Z"])


def test_aggregates_rebuilt_from_their_events_equal_the_live_ones() -> None:
    world = InMemory()
    run(world, [("A", None), ("A", "Ann"), ("B", None), ("B", "Ann"), ("B", "Bob"), ("B", None), ("C", "Bob")])
    for aggregate in world.aggregates.values():
        rebuilt = None
        for event in aggregate.pending_events:
            rebuilt = event.mutate(rebuilt)
        assert state(rebuilt) == state(aggregate)


def test_invariants_are_guarded_by_the_aggregates() -> None:
    world = InMemory()
    run(world, [("A", "Ann"), ("B", None), ("C", "Cid")])
    ann, anonymous, cid = world.identity(1), world.identity(2), world.identity(3)
    cause = Cause("A", "Ann", 1, 1, None)
    with pytest.raises(RuleViolation):
        ann.record_user_id(cause)  # a second user ID
    with pytest.raises(RuleViolation):
        cid.merge_into(ann, cause)  # an identified amplitude ID is never merged
    with pytest.raises(RuleViolation):
        ann.merge_into(anonymous, cause)  # and never into an anonymous one
    anonymous.merge_into(ann, cause)
    with pytest.raises(RuleViolation):
        anonymous.merge_into(cid, cause)  # a merge is permanent
    with pytest.raises(TypeError):
        ann.trigger_event(AmplitudeIdentity.Merged, **cause.fields)  # a missing field fails loudly


def test_duplicates_are_recognised_within_the_window_only() -> None:
    world = InMemory()
    [call] = accept([{"event_type": "v", "device_id": "D", "insert_id": "x"}], server_time=0, min_id_length=1).calls
    assert resolve_call(call, 0, world, WEEK)
    assert not resolve_call(call, WEEK, world, WEEK)
    assert resolve_call(call, WEEK + 1, world, WEEK)
