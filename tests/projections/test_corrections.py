"""Corrections on the read side (docs/corrections.md): the seed's `None` accident repaired, `as_of`
before and after, the audit trail, merged-users exports, rebuild, reopening, other writers, refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledger import IdentityLedger
from ledger.errors import CorrectionRefused
from tests.domain.test_validation import snapshot
from tests.helpers import event

DEVICES = ["device-1", "device-2", "device-3"]


def accident(lg: IdentityLedger) -> int:
    """Three people sign in with the placeholder user ID "None" (allowed by `min_id_length=4`): one person.

    Returns the position before the correction.
    """
    for device_id in DEVICES:
        lg.ingest([event(device_id, event_type="landing"), event(device_id, "None", event_type="signup",
                                                                 user_properties={"$set": {"plan": device_id}}),
                   event(device_id, event_type="purchase")], min_id_length=4)
    return lg.position


def test_the_none_accident_is_repaired(lg: IdentityLedger) -> None:
    before = accident(lg)
    merged = lg.resolve(user_id="None")
    assert merged is not None and merged.device_ids == DEVICES and lg.event_count(merged.amplitude_id) == 9

    correction = lg.retract_user_id("None", reason="placeholder user ID", requester="ops@example.com")

    assert lg.resolve(user_id="None") is None
    people = [lg.resolve(device_id=device_id) for device_id in DEVICES]
    assert [person.device_ids for person in people if person] == [[device_id] for device_id in DEVICES]
    assert [person.user_properties for person in people if person] == [{"plan": d} for d in DEVICES]
    for person, device_id in zip(people, DEVICES, strict=True):
        assert person is not None and person.user_id is None
        timeline = lg.timeline(person.amplitude_id)
        assert [(e.event_type, e.device_id, e.amplitude_id) for e in timeline] == [
            (kind, device_id, person.amplitude_id) for kind in ("landing", "signup", "purchase")]
        assert lg.event_count(person.amplitude_id) == 3
        assert [e.event_type for e in lg.timeline(person.amplitude_id, newest_first=True, limit=2)] == [
            "purchase", "signup"]
    assert lg.identity(merged.amplitude_id) is None  # retired: its events count for the new people
    assert lg.timeline(merged.amplitude_id) == []
    assert correction.position == before + 1
    assert correction.changes.people_before == 1 and correction.changes.people_after == 3
    assert correction.changes.events_reattributed == 9
    assert set(correction.changes.merges_undone) == set(merged.merged_amplitude_ids)
    assert lg.corrections() == [correction]
    stats = lg.stats()
    assert (stats.events, stats.users, stats.identified_users, stats.merges) == (9, 3, 0, 0)
    assert {e.amplitude_id for e in lg.events()} == {person.amplitude_id for person in people if person}


def test_merged_users_export_shows_the_merges_undone_at_the_correction_time(lg: IdentityLedger) -> None:
    accident(lg)
    standing = lg.merges()
    assert standing and all(merge.undone_server_time is None for merge in standing)
    correction = lg.retract_user_id("None", reason="placeholder", requester="ops")
    undone = lg.merges()
    assert [(m.amplitude_id, m.merged_amplitude_id) for m in undone] == [
        (m.amplitude_id, m.merged_amplitude_id) for m in standing]
    assert {merge.undone_server_time for merge in undone} == {correction.server_time}


def test_as_of_before_the_correction_shows_the_old_state(lg: IdentityLedger) -> None:
    before = accident(lg)
    old = lg.resolve(user_id="None")
    lg.retract_user_id("None", reason="placeholder", requester="ops")
    with lg.as_of(before) as past:
        assert past.resolve(user_id="None") == old
        assert past.corrections() == [] and past.merges() == lg.as_of(before).merges()
        assert all(merge.undone_server_time is None for merge in past.merges())
        assert old is not None and len(past.timeline(old.amplitude_id)) == 9
    with lg.as_of(lg.position) as now:
        assert now.corrections() == lg.corrections()
        assert [now.resolve(device_id=d) for d in DEVICES] == [lg.resolve(device_id=d) for d in DEVICES]


def test_audit_shows_the_original_facts_the_correction_and_what_it_changed(lg: IdentityLedger) -> None:
    accident(lg)
    old = lg.resolve(user_id="None")
    assert old is not None
    lg.retract_user_id("None", reason="placeholder user ID", requester="ops@example.com")
    trail = lg.audit(user_id="None")
    kinds = [entry.kind for entry in trail]
    assert kinds.count("bound") == 1 and kinds.count("merged") == 2  # the original binding and merges
    [retracted] = [entry for entry in trail if entry.kind == "retracted"]
    assert (retracted.user_id, retracted.amplitude_id, retracted.correction) == ("None", old.amplitude_id, "None")
    assert (retracted.requester, retracted.reason) == ("ops@example.com", "placeholder user ID")
    assert {entry.amplitude_id for entry in trail if entry.kind == "merge_undone"} == set(old.merged_amplitude_ids)
    assert [entry.amplitude_id for entry in trail if entry.kind == "retired"] == [old.amplitude_id]
    person = lg.resolve(device_id="device-2")
    assert person is not None
    split = [entry for entry in lg.audit(amplitude_id=person.amplitude_id) if entry.kind == "split"]
    assert split and {entry.merged_amplitude_id for entry in split} <= {old.amplitude_id, *old.merged_amplitude_ids}
    moved = [entry for entry in lg.audit(device_id="device-2") if entry.correction == "None"]
    assert [(entry.kind, entry.amplitude_id) for entry in moved] == [("pointer_moved", person.amplitude_id)]


def test_a_person_the_correction_does_not_change_keeps_its_amplitude_id(lg: IdentityLedger) -> None:
    lg.ingest([event("device-9", "bob-1"), event("device-9", "guest"), event("device-9", "carol"),
               event("device-8", "guest"), event("device-7", "dave-1")])
    carol, dave = lg.resolve(user_id="carol"), lg.resolve(user_id="dave-1")
    correction = lg.retract_user_id("guest", reason="shared test account", requester="ops")
    assert lg.resolve(user_id="carol") == carol and lg.resolve(user_id="dave-1") == dave
    assert carol is not None and carol.amplitude_id not in correction.changes.split
    bob = lg.resolve(user_id="bob-1")
    assert bob is not None and [e.user_id for e in lg.timeline(bob.amplitude_id)] == ["bob-1", "guest"]


def test_rebuild_and_reopen_reproduce_the_corrected_state(open_ledger: Callable[..., IdentityLedger]) -> None:
    lg = open_ledger()
    accident(lg)
    lg.retract_user_id("None", reason="placeholder", requester="ops")
    incremental = snapshot(lg)
    lg.rebuild()
    assert snapshot(lg) == incremental
    people = [lg.resolve(device_id=d) for d in DEVICES]
    lg.close()
    again = open_ledger(lg.url)
    assert [again.resolve(device_id=d) for d in DEVICES] == people
    report = again.ingest([event("device-4", "None")], min_id_length=4)
    assert [warning.index for warning in report.warnings if "retracted" in warning.message] == [0]
    assert again.resolve(user_id="None") is None
    stored = again.timeline(again.resolve(device_id="device-4").amplitude_id)  # type: ignore[union-attr]
    assert [e.user_id for e in stored] == [None]


def test_other_writers_follow_a_retraction(open_ledger: Callable[..., IdentityLedger]) -> None:
    first = open_ledger()
    accident(first)
    second = open_ledger(first.url)
    assert second.resolve(user_id="None") is not None
    first.retract_user_id("None", reason="placeholder", requester="ops")
    assert second.resolve(user_id="None") is None
    report = second.ingest([event("device-1", "None", event_type="again")], min_id_length=4)
    assert any("retracted" in warning.message for warning in report.warnings)
    assert second.corrections() == first.corrections()
    assert [e.event_type for e in first.timeline(first.resolve(device_id="device-1").amplitude_id)  # type: ignore[union-attr]
            ][-1] == "again"


@pytest.mark.parametrize("arguments, status, field", [
    ({"user_id": "never-seen"}, 404, None),
    ({"user_id": "None\x00"}, 400, "user_id"),
    ({"user_id": ""}, 400, "user_id"),
    ({"user_id": "x" * 10_000}, 400, "user_id"),
    ({"user_id": 12}, 400, "user_id"),
    ({"reason": "why\x00"}, 400, "reason"),
    ({"reason": " "}, 400, "reason"),
    ({"reason": "r" * 1_000_000}, 400, "reason"),
    ({"requester": "\x00"}, 400, "requester"),
    ({"requester": ["nested", ["list"]]}, 400, "requester"),
])
def test_refused_corrections_store_nothing(lg: IdentityLedger, arguments: dict[str, Any], status: int,
                                           field: str | None) -> None:
    accident(lg)
    before = snapshot(lg)
    with pytest.raises(CorrectionRefused) as refused:
        lg.retract_user_id(**{"user_id": "None", "reason": "why", "requester": "ops", **arguments})
    assert refused.value.status == status and refused.value.body.get("field") == field
    assert snapshot(lg) == before


def test_a_user_id_is_retracted_once(lg: IdentityLedger) -> None:
    accident(lg)
    lg.retract_user_id("None", reason="placeholder", requester="ops")
    with pytest.raises(CorrectionRefused) as refused:
        lg.retract_user_id("None", reason="again", requester="ops")
    assert refused.value.status == 409 and len(lg.corrections()) == 1
