"""Poison input: what anyone holding an upload key can send must never wedge or bloat the ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import IdentityLedger, InvalidRequest
from ledger.domain.model import AmplitudeIdentity, RuleViolation
from ledger.domain.properties import (
    MAX_INT,
    MAX_LIST_ITEMS,
    MAX_PROPERTIES,
    MAX_PROPERTIES_BYTES,
    apply_operations,
    encoded_size,
    merge_properties,
)
from ledger.errors import ConflictRetriesExhausted
from ledger.store.writer import Conflict, Transaction
from tests.helpers import connected, event


def refused_fields(lg: IdentityLedger, events: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Ingest a request that must be refused whole; returns its `events_with_invalid_fields`."""
    before = lg.position
    with pytest.raises(InvalidRequest) as refused:
        lg.ingest(events)
    assert refused.value.status == 400
    assert lg.position == before
    return refused.value.body["events_with_invalid_fields"]


def still_works(lg: IdentityLedger) -> None:
    """The ledger keeps ingesting and answering, and its read side equals its rebuild."""
    lg.ingest([event("device-after", "user-after")])
    assert lg.resolve(user_id="user-after") is not None
    before = lg.stats()
    lg.rebuild()
    assert lg.stats() == before


# -- 1. NUL --------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["event_type", "user_id", "device_id", "insert_id"])
def test_nul_in_a_stored_string_is_refused_by_index(lg: IdentityLedger, field: str) -> None:
    poisoned = event("device-ok", "user-ok")
    poisoned[field] = "bad\x00value"
    assert refused_fields(lg, [event("device-first"), poisoned]) == {field: [1]}
    still_works(lg)


@pytest.mark.parametrize("properties", [
    {"event_properties": {"key\x00": 1}},
    {"event_properties": {"nested": [{"k": "v\x00"}]}},
    {"user_properties": {"$set": {"plan": "pro\x00"}}},
    {"user_properties": {"name\x00": "x"}},
    {"user_properties": {"$unset": ["a\x00"]}},
])
def test_nul_inside_properties_is_refused(lg: IdentityLedger, properties: dict[str, Any]) -> None:
    field = next(iter(properties))
    assert refused_fields(lg, [event("device-nul", **properties)]) == {field: [0]}
    still_works(lg)


# -- 2. numbers the store cannot hold ------------------------------------------------------------


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 2**64 - 1, float("inf"), float("nan")])
def test_numbers_past_int64_or_not_finite_are_refused(lg: IdentityLedger, value: float) -> None:
    assert refused_fields(lg, [event("device-n", user_properties={"$add": {"n": value}})]) == {"user_properties": [0]}
    assert refused_fields(lg, [event("device-n", event_properties={"n": value})]) == {"event_properties": [0]}
    still_works(lg)


def test_an_add_that_would_overflow_is_refused_with_its_index(lg: IdentityLedger) -> None:
    lg.identify([{"user_id": "user-adder", "user_properties": {"$add": {"n": MAX_INT - 1}}}])
    overflow = {"user_id": "user-adder", "user_properties": {"$add": {"n": 2}}}
    with pytest.raises(InvalidRequest) as refused:
        lg.ingest([event(user_id="user-adder"), {"event_type": "$identify", **overflow}])
    assert refused.value.body["events_with_invalid_fields"] == {"user_properties": [1]}
    person = lg.resolve(user_id="user-adder")
    assert person is not None and person.user_properties == {"n": MAX_INT - 1}
    lg.identify([{"user_id": "user-adder", "user_properties": {"$add": {"n": 1}}}])  # up to the edge is fine
    still_works(lg)


def test_a_request_that_fails_while_stored_fails_alone(lg: IdentityLedger) -> None:
    """Requests queued together share a transaction; one refused while resolving leaves the others stored."""
    lg.identify([{"user_id": "user-edge", "user_properties": {"$add": {"n": MAX_INT}}}])
    requests = [[event(f"device-group-{n}", f"user-group-{n}")] for n in range(4)]
    requests.insert(2, [{"event_type": "$identify", "user_id": "user-edge", "user_properties": {"$add": {"n": 1}}}])
    outcomes: list[Any] = [None] * len(requests)

    def send(index: int) -> None:
        try:
            outcomes[index] = lg.ingest(requests[index])
        except InvalidRequest as error:
            outcomes[index] = error

    threads = [threading.Thread(target=send, args=(index,)) for index in range(len(requests))]
    with lg._context.lock:  # hold the writer so that every request queues for one group commit
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(lg._commits._queue) < len(requests) and time.monotonic() < deadline:
            time.sleep(0.001)
    for thread in threads:
        thread.join()
    assert isinstance(outcomes[2], InvalidRequest)
    assert [outcome.ingested for index, outcome in enumerate(outcomes) if index != 2] == [1, 1, 1, 1]
    assert all(lg.resolve(user_id=f"user-group-{n}") is not None for n in range(4))
    still_works(lg)


# -- 3. amplification ----------------------------------------------------------------------------


@pytest.mark.parametrize("user_properties", [
    {"$set": {f"k{n}": n for n in range(MAX_PROPERTIES + 1)}},
    {"$append": {"list": list(range(MAX_LIST_ITEMS + 1))}},
    {"$set": {f"k{n}": "x" * 1000 for n in range(20)}},  # over the encoded size on its own
])
def test_one_call_over_a_property_limit_is_refused(lg: IdentityLedger, user_properties: dict[str, Any]) -> None:
    assert refused_fields(lg, [event("device-ok"), event("device-big", user_properties=user_properties)]) == {
        "user_properties": [1]}


def database_bytes(lg: IdentityLedger) -> int:
    with connected(lg.url) as connection:
        if connection.dialect.name == "sqlite":
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
            return int(pages) * int(connection.exec_driver_sql("PRAGMA page_size").scalar())
        return int(connection.execute(sa.text(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'r'")).scalar())


def test_a_growing_person_is_stopped_at_the_limit_and_storage_stays_bounded(lg: IdentityLedger) -> None:
    """900 `$append`s of 1 KB each, each followed by a tracked event (the request that grew a DB by 2 GB)."""
    lg.ingest([event("device-seed")])
    before = database_bytes(lg)
    request: list[dict[str, Any]] = []
    for n in range(900):
        request.append({"event_type": "$identify", "user_id": "user-hoarder", "insert_id": f"a{n}",
                        "user_properties": {"$append": {"history": "h" * 1000}}})
        request.append(event(user_id="user-hoarder"))
    with pytest.raises(InvalidRequest) as refused:
        lg.ingest(request)
    first_over = refused.value.body["events_with_invalid_fields"]["user_properties"][0]
    assert 2 * 10 <= first_over <= 2 * 17  # about 16 KiB of 1 KB items
    # A client drops the refused events and sends the rest; storage per event stays bounded.
    accepted = request[:first_over]
    lg.ingest(accepted)
    assert database_bytes(lg) - before < len(accepted) * (MAX_PROPERTIES_BYTES + 8192) + 2_000_000
    person = lg.resolve(user_id="user-hoarder")
    assert person is not None and encoded_size(person.user_properties) <= MAX_PROPERTIES_BYTES
    still_works(lg)


def test_a_merge_keeps_the_person_within_the_limits() -> None:
    live = {f"live{n}": "v" * 100 for n in range(100)}
    merged = {f"old{n}": "w" * 100 for n in range(150)} | {"live0": "loser"}
    result = merge_properties(live, merged)
    assert encoded_size(result) <= MAX_PROPERTIES_BYTES
    assert all(result[key] == value for key, value in live.items())  # the live identity's values win
    assert 0 < len(result) - len(live) < 150  # some of the merged-only keys kept, in their order
    assert merge_properties({"a": 1}, {"b": 2, "a": 0}) == {"b": 2, "a": 1}


def test_a_person_over_the_limits_can_always_shrink() -> None:
    big = {f"k{n}": "x" * 1000 for n in range(20)}  # e.g. written before the limits existed
    assert apply_operations(big, {"$unset": {"k0": "-"}}) == {f"k{n}": "x" * 1000 for n in range(1, 20)}
    assert apply_operations(big, {"$clearAll": True}) == {}


# -- 11. a broken rule is a bug, not a conflict ---------------------------------------------------


def test_a_rule_violation_is_raised_at_once_not_retried_as_a_conflict(lg: IdentityLedger,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def broken(self: AmplitudeIdentity, cause: Any) -> None:
        calls.append(cause)
        raise RuleViolation("a bug in the rules")

    monkeypatch.setattr(AmplitudeIdentity, "record_user_id", broken)
    with pytest.raises(RuleViolation, match="a bug in the rules"):
        try:
            lg.ingest([event("device-bug", "user-bug")])
        except ConflictRetriesExhausted as error:  # what it was before: the bug lost, retried 20 times
            raise AssertionError(f"retried as a conflict: {error}") from error
    assert len(calls) == 2  # one retry on freshly loaded state, then the bug is raised
    monkeypatch.undo()
    still_works(lg)


def test_conflicts_that_never_end_keep_their_cause(open_ledger: Callable[..., IdentityLedger],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    lg = open_ledger()

    def always_stale(*_: Any, **__: Any) -> Any:
        raise Conflict("stale version")

    monkeypatch.setattr(Transaction, "insert_events", always_stale)
    with pytest.raises(ConflictRetriesExhausted) as gave_up:
        lg.ingest([event("device-race")])
    assert isinstance(gave_up.value.__cause__, Conflict)
