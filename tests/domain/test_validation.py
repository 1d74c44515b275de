"""The validation contract of docs/rules.md: what is refused, the exact error body, and that nothing is stored."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from ledger import IdentityLedger, InvalidRequest
from ledger.domain.calls import BLOCKED_IDS
from tests.helpers import connected, event


def snapshot(lg: IdentityLedger) -> dict[str, list[Any]]:
    """Every row of every table in the ledger's database, to compare byte for byte."""
    with connected(lg.url) as connection:
        names = sa.inspect(connection).get_table_names()
        return {name: sorted(map(tuple, connection.execute(sa.text(f"SELECT * FROM {name}"))), key=repr)
                for name in names}


def rejected(lg: IdentityLedger, events: list[Any], **options: Any) -> InvalidRequest:
    before = snapshot(lg)
    with pytest.raises(InvalidRequest) as caught:
        lg.ingest(events, **options)
    assert snapshot(lg) == before, "a rejected request changed the ledger"
    return caught.value


@pytest.fixture
def seeded(lg: IdentityLedger) -> IdentityLedger:
    lg.ingest([event("device-seed", "user-seed"), event("device-two")])
    return lg


@pytest.mark.parametrize("blocked", sorted(BLOCKED_IDS))
@pytest.mark.parametrize("field", ["user_id", "device_id"])
def test_blocked_ids_fail_the_request_before_the_length_rule(seeded: IdentityLedger, blocked: str, field: str) -> None:
    bad = {"event_type": "x", "device_id": "device-ok", "user_id": "user-ok", field: blocked}
    error = rejected(seeded, [event("device-fine"), bad])
    assert error.status == 400
    assert error.body == {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_invalid_fields": {field: [1]},
    }


def test_blocked_ids_are_exact_and_case_sensitive(lg: IdentityLedger) -> None:
    report = lg.ingest([event("device-x", "None"), event("device-y", "NULL")], min_id_length=4)
    assert report.ingested == 2
    assert [w.index for w in report.warnings] == [0, 1]
    assert "'None'" in report.warnings[0].message and "'NULL'" in report.warnings[1].message
    grouped = lg.ingest([event("device-z", "None")], min_id_length=4)
    assert grouped.ingested == 1
    person = lg.resolve(user_id="None")
    assert person is not None and person.device_ids == ["device-x", "device-z"]


def test_short_ids_are_dropped_and_an_event_left_without_id_fails(seeded: IdentityLedger) -> None:
    report = seeded.ingest([event("dev", "user-long-enough")])
    assert report.ingested == 1
    assert seeded.resolve(device_id="dev") is None  # the short device ID was dropped
    error = rejected(seeded, [event("device-ok"), event("abc", "xy"), event("device-ok2")])
    assert error.body == {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_invalid_id_lengths": {"user_id": [1], "device_id": [1]},
    }


def test_min_id_length_is_a_request_option(lg: IdentityLedger) -> None:
    assert lg.ingest([event("ab")], min_id_length=2).ingested == 1
    assert lg.resolve(device_id="ab") is not None
    with pytest.raises(InvalidRequest) as caught:
        lg.ingest([event("ab")], min_id_length=-1)  # type: ignore[arg-type]
    assert caught.value.status == 400


def test_missing_event_type_and_ids_are_listed_per_field(seeded: IdentityLedger) -> None:
    events = [event("device-ok"), {"device_id": "device-no-type"}, {"event_type": "no ids"}, event("device-ok")]
    error = rejected(seeded, events)
    assert error.body == {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_missing_fields": {"event_type": [1], "user_id": [2], "device_id": [2]},
    }


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"user_id": 12345}, "user_id"),
        ({"device_id": "d" * 1025}, "device_id"),
        ({"event_type": "e" * 1025}, "event_type"),
        ({"time": "yesterday"}, "time"),
        ({"time": 1.5}, "time"),
        ({"time": -1}, "time"),
        ({"time": 10**20}, "time"),
        ({"insert_id": ["x"]}, "insert_id"),
        ({"event_properties": "flat"}, "event_properties"),
        ({"event_properties": {"s": "v" * 1025}}, "event_properties"),
        ({"event_properties": {"big": 2**70}}, "event_properties"),
        ({"user_properties": {"$nope": {"a": 1}}}, "user_properties"),
        ({"user_properties": {"$set": 3}}, "user_properties"),
    ],
)
def test_invalid_field_values_are_listed_by_field(seeded: IdentityLedger, bad: dict, field: str) -> None:
    error = rejected(seeded, [event("device-ok"), event("device-ok"), {**event("device-bad"), **bad}])
    assert error.body["events_with_invalid_fields"] == {field: [2]}


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_objects_may_nest_40_deep_but_not_41(lg: IdentityLedger) -> None:
    assert lg.ingest([event("device-ok", event_properties=nested(40))]).ingested == 1
    error = rejected(lg, [event("device-ok", event_properties=nested(41))])
    assert error.body["events_with_invalid_fields"] == {"event_properties": [0]}


def test_every_bad_event_is_listed(seeded: IdentityLedger) -> None:
    events = [event("device-ok"), {"user_id": "null", "event_type": "x"}, {"device_id": "device-z"},
              {**event("device-q"), "user_id": 7}, event("device-ok")]
    error = rejected(seeded, events)
    assert error.body["events_with_invalid_fields"] == {"user_id": [1, 3]}
    assert error.body["events_with_missing_fields"] == {"event_type": [2]}


def test_a_non_object_event_is_invalid(seeded: IdentityLedger) -> None:
    error = rejected(seeded, [event("device-ok"), 42, "event"])
    assert error.body["events_with_invalid_fields"] == {"event": [1, 2]}


def test_more_than_2000_events_is_payload_too_large(seeded: IdentityLedger) -> None:
    error = rejected(seeded, [event(f"device-{i}") for i in range(2001)])
    assert (error.status, error.body) == (413, {"code": 413, "error": "Payload too large"})
    assert seeded.ingest([event(f"device-{i}") for i in range(2000)]).ingested == 2000


def test_raw_json_events_are_validated_the_same_way(lg: IdentityLedger) -> None:
    raws = [msgspec.Raw(msgspec.json.encode(e)) for e in [event("device-ok"), {"event_type": "x", "user_id": 5}]]
    error = rejected(lg, raws)
    assert error.body["events_with_invalid_fields"] == {"user_id": [1]}
    for broken in (b"{not json", b'{"event_type": "\xff\xfe", "device_id": "device-x"}', b"[" * 100_000):
        assert rejected(lg, [msgspec.Raw(broken)]).body["events_with_invalid_fields"] == {"event": [0]}


def test_time_defaults_to_server_receipt_time(lg: IdentityLedger) -> None:
    report = lg.ingest([{"event_type": "x", "device_id": "device-t"}, {**event("device-t"), "time": 5}])
    times = [e.time for e in lg.events()]
    assert times == [report.server_time, 5]
    assert all(e.server_time == report.server_time for e in lg.events())


def test_user_id_alone_gets_a_stable_device_id(lg: IdentityLedger) -> None:
    lg.ingest([{"event_type": "x", "user_id": "user-only"}])
    lg.ingest([{"event_type": "y", "user_id": "user-only"}])
    [device_id] = {e.device_id for e in lg.events()}
    person = lg.resolve(user_id="user-only")
    assert person is not None and person.device_ids == [device_id]
