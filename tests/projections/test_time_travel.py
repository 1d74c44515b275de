"""`as_of` by position or by time, its refusals, and what the history tables hold."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from ledger import IdentityLedger, OutsideTheLedger
from projections import tables as t
from tests.helpers import connected, event


def at(server_time: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(server_time / 1000, dt.UTC)


def test_a_time_means_the_state_after_the_last_call_stored_at_or_before_it(lg: IdentityLedger) -> None:
    first = lg.ingest([event("device-A"), event("device-B", "user-1")])
    after_first = lg.position
    second = lg.ingest([event("device-A", "user-1")])  # merges device-A's person into user-1's
    with lg.as_of(at(first.server_time)) as view:
        assert view.position == after_first and view.merges() == []
    with lg.as_of(at(first.server_time).astimezone(dt.timezone(dt.timedelta(hours=-5)))) as view:
        assert view.position == after_first  # any time zone names the same instant
    with lg.as_of(at(second.server_time - 1)) as view:  # between the two requests
        assert view.position == after_first
    with lg.as_of(at(first.server_time - 1)) as view:  # before the first call: the empty ledger
        assert view.position == 0 and view.resolve(device_id="device-A") is None
    with lg.as_of(at(second.server_time)) as view:
        assert view.position == lg.position and len(view.merges()) == 1


@pytest.mark.parametrize(("as_of", "problem"), [
    (lambda lg: lg.position + 1, "is past the end of the ledger"),
    (lambda lg: -1, "a position is >= 0"),
    (lambda lg: True, "give a position"),
    (lambda lg: "3", "give a position"),
    (lambda lg: dt.datetime(2023, 11, 14, 22, 13, 20), "needs a time zone"),
    (lambda lg: dt.datetime(2999, 1, 1, tzinfo=dt.UTC), "is in the future"),
])
def test_outside_the_ledger_is_an_error_never_now(lg: IdentityLedger, as_of, problem: str) -> None:  # type: ignore[no-untyped-def]
    lg.ingest([event("device-A")])
    with pytest.raises(OutsideTheLedger, match=problem) as refused:
        lg.as_of(as_of(lg))
    assert refused.value.status == 400


def test_a_correction_s_before_and_after_both_answer(lg: IdentityLedger) -> None:
    lg.ingest([event("device-A", "user-shared")])
    lg.ingest([event("device-B", "user-shared")])
    before = lg.position
    lg.retract_user_id("user-shared", reason="a placeholder", requester="test")
    with lg.as_of(before) as view:
        bound = view.resolve(user_id="user-shared")
        assert bound is not None and bound.device_ids == ["device-A", "device-B"]
    assert lg.resolve(user_id="user-shared") is None
    assert lg.resolve(device_id="device-A") != lg.resolve(device_id="device-B")


def test_the_row_keeps_its_first_value_and_the_history_each_update_s(lg: IdentityLedger) -> None:
    lg.ingest([event("device-A")])
    seen = lg.position
    lg.ingest([event("device-B", "user-1")])
    lg.ingest([event("device-A", "user-1")])  # device-A's pointer moves to user-1's person
    moved = lg.position
    history, devices = t.device_pointer_history, t.devices
    with connected(lg.url) as connection:
        rows = connection.execute(sa.select(history.c.pointer, history.c.valid_from, history.c.valid_to)
                                  .where(history.c.device_id == "device-A").order_by(history.c.valid_from)).all()
        device = connection.execute(sa.select(devices.c.pointer, devices.c.first_pointer, devices.c.created)
                                    .where(devices.c.device_id == "device-A")).one()
        untouched = connection.execute(sa.select(sa.func.count()).select_from(history)
                                       .where(history.c.device_id == "device-B")).scalar()
    [pointer_moved] = [entry.position for entry in lg.audit(device_id="device-A") if entry.kind == "pointer_moved"]
    assert tuple(device) == (2, 1, device[2]) and device[2] <= seen < pointer_moved <= moved
    assert [tuple(row) for row in rows] == [(2, pointer_moved, None)]
    assert untouched == 0  # a device never moved has no history: its row holds all there is
    with lg.as_of(seen) as before, lg.as_of(moved) as after:  # the first value, then the history's
        assert [(found.amplitude_id, found.user_id) for found in (before.resolve(device_id="device-A"),
                                                                  after.resolve(device_id="device-A"))
                if found is not None] == [(1, None), (2, "user-1")]


def test_explain_names_the_facts_from_arrival_to_today(lg: IdentityLedger) -> None:
    lg.ingest([event("device-A", event_type="landing")])
    [landing] = lg.events()
    lg.ingest([event("device-B", "user-1")])
    lg.ingest([event("device-A", "user-1", event_type="login")])  # merges the landing's person into user-1's
    explanation = lg.explain(landing.position)
    assert explanation is not None
    assert (explanation.arrived_as, explanation.now) == (1, 2)
    assert [(entry.kind, entry.amplitude_id) for entry in explanation.because] == [
        ("created", 1), ("linked", 1), ("merged", 1)]
    assert explanation.because[-1].merged_amplitude_id == 2
    assert [entry.position for entry in explanation.because] == sorted(entry.position for entry in explanation.because)
    with lg.as_of(landing.position) as before_the_merge:
        then = before_the_merge.explain(landing.position)
        assert then is not None and then.now == 1 and [entry.kind for entry in then.because] == ["created", "linked"]


def test_explain_follows_a_correction_and_answers_none_where_no_event_is(lg: IdentityLedger) -> None:
    lg.ingest([event("device-A", "user-shared", event_type="first")])
    lg.ingest([event("device-B", "user-shared", event_type="second")])
    second = lg.events()[-1]
    lg.retract_user_id("user-shared", reason="a placeholder", requester="test")
    explanation = lg.explain(second.position)
    assert explanation is not None and explanation.now == lg.resolve(device_id="device-B").amplitude_id  # type: ignore[union-attr]
    assert explanation.now != explanation.arrived_as
    assert {"bound", "retracted"} <= {entry.kind for entry in explanation.because}
    assert lg.explain(1) is None and lg.explain(lg.position + 1) is None  # no tracked event there
    with pytest.raises(ValueError):
        lg.explain(-1)


def test_explain_of_a_forgotten_person_s_event_finds_nothing(lg: IdentityLedger) -> None:
    lg.ingest([event("device-A", "user-gone")])
    [gone] = lg.events()
    lg.forget(user_ids=["user-gone"], requester="test", now=True)
    assert lg.explain(gone.position) is None
