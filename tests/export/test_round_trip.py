"""`export` then `replay` (and `ledger export` then `ledger ingest`) into an empty ledger gives the same people."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger import IdentityLedger
from ledger.errors import CorrectionRefused, InvalidRequest
from ledger.history.records import CALL, CORRECTION, FORGOTTEN, FORMAT, HistoryFormatError
from tests.domain.test_invariants import DEVICES, USERS, as_events, calls
from tests.export.people import corrections, groups, mappings, people
from tests.helpers import Clock

GROUPS = ["acme", "globex"]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.lists(calls, min_size=1, max_size=6)),
        st.tuples(st.just("forget"), st.sampled_from(USERS)),
        st.tuples(st.just("retract"), st.sampled_from(USERS)),
        st.tuples(st.just("join"), st.tuples(st.sampled_from(DEVICES), st.sampled_from(GROUPS))),
        st.tuples(st.just("group_identify"), st.tuples(st.sampled_from(GROUPS), st.integers(0, 3))),
        st.tuples(st.just("map"), st.tuples(st.sampled_from(USERS), st.sampled_from(USERS))),
        st.tuples(st.just("unmap"), st.sampled_from(USERS)),
    ),
    min_size=1,
    max_size=14,
)


def apply(lg: IdentityLedger, kind: str, argument: Any) -> None:
    if kind == "ingest":
        lg.ingest(as_events(argument))
    elif kind == "forget":
        # The person the user ID resolves to now (forgetting a retracted user ID's retired amplitude ID
        # erases operations its split-off person's calls caused: see docs/export.md).
        person = lg.resolve(user_id=argument)
        if person is not None:
            lg.forget(amplitude_ids=[person.amplitude_id], requester="dpo", now=True)
    elif kind == "retract":
        with contextlib.suppress(CorrectionRefused):
            lg.retract_user_id(argument, reason="a shared login")
    else:
        apply_group_or_mapping(lg, kind, argument)


def apply_group_or_mapping(lg: IdentityLedger, kind: str, argument: Any) -> None:
    if kind == "join":
        device_id, group = argument
        lg.ingest([{"device_id": device_id, "event_type": "view", "groups": {"org": group}}])
    elif kind == "group_identify":
        group, seats = argument
        lg.group_identify([{"group_type": "org", "group_value": group,
                            "group_properties": {"$add": {"seats": seats}, "$setOnce": {"first": seats}}}])
    elif kind == "map":
        try:
            lg.map_user(*argument)
        except InvalidRequest:  # onto itself, a chain or a cycle: refused, nothing stored
            pass
    else:
        lg.unmap_user(argument)


def same_people(source: IdentityLedger, copy: IdentityLedger) -> None:
    assert people(copy, DEVICES, USERS) == people(source, DEVICES, USERS)
    names = [("org", group) for group in GROUPS]
    assert groups(copy, names) == groups(source, names)
    assert mappings(copy) == mappings(source)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps)
def test_a_replayed_export_holds_the_same_people(new_url: Callable[[], str], history: list[tuple[str, Any]]) -> None:
    with IdentityLedger(new_url(), clock=Clock()) as source, IdentityLedger(new_url(), clock=Clock()) as copy:
        for kind, argument in history:
            apply(source, kind, argument)
        records = list(source.export())
        replayed = copy.replay(records)
        same_people(source, copy)
        # A correction whose user ID no remaining call carries (forgotten since) has nothing to re-resolve.
        assert replayed.corrections + replayed.corrections_skipped == len(corrections(source))
        assert replayed.corrections == len(corrections(copy))
        kinds = {record["record"] for record in records}
        event(f"records: {sorted(kinds)}")
        assert all(record["format"] == FORMAT for record in records)
        assert [record["position"] for record in records] == sorted(record["position"] for record in records)


def test_identify_calls_and_operations_are_exported_as_sent(open_ledger: Callable[..., IdentityLedger]) -> None:
    lg = open_ledger()
    lg.ingest([{"device_id": "kiosk-1", "event_type": "view", "user_properties": {"plan": "free"}}])
    lg.identify([{"device_id": "kiosk-1", "user_id": "maria-1", "user_properties": {"$add": {"visits": 1}}}])
    first, second = lg.export()
    assert (first["record"], first["event_type"], first["user_properties"]) == (CALL, "view", {"$set": {"plan": "free"}})
    assert (second["event_type"], second["user_id"], second["user_properties"]) == (
        "$identify", "maria-1", {"$add": {"visits": 1}})
    assert second["server_upload_time"] > first["server_upload_time"]


def test_corrections_and_deletions_are_records_of_their_own(open_ledger: Callable[..., IdentityLedger]) -> None:
    source, copy = open_ledger(), open_ledger()
    source.ingest([{"device_id": "kiosk-1", "user_id": "maria-1", "event_type": "view"},
                   {"device_id": "kiosk-1", "user_id": "frank-1", "event_type": "view"}])
    source.ingest([{"device_id": "phone-22", "user_id": "frank-1", "event_type": "view"}])
    source.ingest([{"device_id": "tablet-3", "user_id": "staff-login", "event_type": "view"}])
    source.retract_user_id("staff-login", reason="typed by staff", requester="ops")
    source.forget(user_ids=["frank-1"], requester="dpo", now=True)
    source.ingest([{"device_id": "kiosk-1", "event_type": "after"}])  # a new person: the pointer was forgotten
    records = list(source.export())
    correction = next(record for record in records if record["record"] == CORRECTION)
    assert (correction["user_id"], correction["reason"], correction["requester"]) == ("staff-login", "typed by staff", "ops")
    forgotten = next(record for record in records if record["record"] == FORGOTTEN)
    assert forgotten["device_ids"] == ["kiosk-1"]
    assert "frank-1" not in str(records) and "phone-22" not in str(records)
    copy.replay(records)
    same_people(source, copy)
    assert corrections(copy) == corrections(source)
    assert copy.resolve(device_id="kiosk-1") is not None
    assert copy.resolve(user_id="frank-1") is None


def test_an_old_ledger_history_format_is_refused_by_name(open_ledger: Callable[..., IdentityLedger]) -> None:
    with pytest.raises(HistoryFormatError, match="upgrade"):
        open_ledger().replay([{"format": "ledger-history/2", "record": "call", "position": 1}])
