"""Forgetting a person a correction split off: their history on the retired amplitude IDs goes too.

After the `None` accident is repaired, each person's calls sit on the retired ID's Timeline
streams (re-attributed by position) and its identity facts hold their devices and properties.
"""

from __future__ import annotations

from ledger import IdentityLedger
from tests.domain.test_validation import snapshot
from tests.helpers import Clock, event
from tests.store.test_deletion_jobs import found, stored_text

PEOPLE = [{"device_id": f"dev-{name}-q{n}x", "insert_id": f"ins-{name}-r{n}y", "event_value": f"evprop-{name}-s{n}z",
           "user_value": f"userprop-{name}-t{n}w"} for n, name in enumerate(["carol", "dave", "erin"])]
CAROL_USER_ID = "carol.k4v@example.org"


def accident_repaired(lg: IdentityLedger) -> int:
    """Three people sign in as "None", the correction splits them; Carol then signs in for real."""
    for who in PEOPLE:
        lg.ingest([event(who["device_id"], event_type="landing"),
                   event(who["device_id"], "None", insert_id=who["insert_id"], event_type="signup",
                         event_properties={"label": who["event_value"]},
                         user_properties={"$set": {"plan": who["user_value"]}})], min_id_length=4)
    retired = lg.resolve(user_id="None")
    assert retired is not None
    lg.retract_user_id("None", reason="placeholder user ID", requester="ops@example.com")
    lg.ingest([event(PEOPLE[0]["device_id"], CAROL_USER_ID, event_type="login")])
    return retired.amplitude_id


def test_a_person_split_off_by_a_correction_is_forgotten_with_their_history(lg: IdentityLedger) -> None:
    retired = accident_repaired(lg)
    carol = lg.resolve(user_id=CAROL_USER_ID)
    assert carol is not None and [e.event_type for e in lg.timeline(carol.amplitude_id)] == [
        "landing", "signup", "login"]
    others = [lg.resolve(device_id=who["device_id"]) for who in PEOPLE[1:]]

    job = lg.forget(user_ids=[CAROL_USER_ID], requester="dpo@example.org", now=True)

    assert job["status"] == "done"
    assert lg.is_forgotten(carol.amplitude_id) and lg.is_forgotten(retired)
    stored = stored_text(lg)
    assert [text for text in [CAROL_USER_ID, *PEOPLE[0].values()] if found(stored, text)] == []
    assert [text for who in PEOPLE[1:] for text in who.values() if not found(stored, text)] == []
    for person, who in zip(others, PEOPLE[1:], strict=True):
        assert person is not None and lg.resolve(device_id=who["device_id"]) == person
        assert [e.event_type for e in lg.timeline(person.amplitude_id)] == ["landing", "signup"]
        assert lg.event_count(person.amplitude_id) == 2
    assert lg.resolve(device_id=PEOPLE[0]["device_id"]) is None
    assert len(lg.corrections()) == 1
    incremental = snapshot(lg)
    lg.rebuild()
    assert snapshot(lg) == incremental
    for position in range(lg.position + 1):
        with lg.as_of(position) as view:
            assert view.identity(carol.amplitude_id) is None and view.resolve(user_id=CAROL_USER_ID) is None


def test_a_retired_amplitude_id_is_nobodys_to_forget(lg: IdentityLedger) -> None:
    from ledger.errors import DeletionRefused

    retired = accident_repaired(lg)
    try:
        lg.forget(amplitude_ids=[retired], requester="dpo@example.org", now=True)
    except DeletionRefused as refused:
        assert refused.body["invalid_amplitude_ids"] == [retired]
    else:
        raise AssertionError("a retired amplitude ID was accepted for deletion")
    assert all(lg.resolve(device_id=who["device_id"]) is not None for who in PEOPLE)


def test_a_retracted_user_id_is_nobodys_to_forget(lg: IdentityLedger) -> None:
    """Its calls were given to the people the correction split off: forgetting it must not take them."""
    from ledger.errors import DeletionRefused

    accident_repaired(lg)
    people = [lg.resolve(device_id=who["device_id"]) for who in PEOPLE]
    timelines = [lg.timeline(person.amplitude_id) for person in people if person is not None]
    try:
        lg.forget(user_ids=["None"], requester="dpo@example.org", now=True)
    except DeletionRefused as refused:
        assert refused.body["invalid_user_ids"] == ["None"]
    else:
        raise AssertionError("a retracted user ID was accepted for deletion")
    job = lg.forget(user_ids=["None"], requester="dpo@example.org", now=True, ignore_invalid_id=True)
    assert job["amplitude_ids"] == []
    assert [lg.resolve(device_id=who["device_id"]) for who in PEOPLE] == people
    assert [lg.timeline(person.amplitude_id) for person in people if person is not None] == timelines
    assert all(found(stored_text(lg), text) for who in PEOPLE for text in who.values())


def test_a_job_waiting_when_a_correction_retires_its_amplitude_id_forgets_whom_its_user_id_names_now(
        lg: IdentityLedger, clock: Clock) -> None:
    """A job names amplitude IDs; a correction made before it runs may retire one. The job then forgets the
    person the retired ID's user ID is bound to now, and nobody else (the others split off it stay)."""
    lg.ingest([event(PEOPLE[1]["device_id"], "None", event_type="signup"),
               event(PEOPLE[0]["device_id"], "None", event_type="signup"),  # Dave's person, on Carol's device
               event(PEOPLE[0]["device_id"], CAROL_USER_ID, event_type="login")], min_id_length=4)
    named = lg.resolve(user_id=CAROL_USER_ID)
    assert named is not None
    job = lg.forget(user_ids=[CAROL_USER_ID], requester="dpo@example.org")  # tomorrow's job
    lg.retract_user_id("None", reason="placeholder user ID", requester="ops@example.com")
    carol, dave = lg.resolve(user_id=CAROL_USER_ID), lg.resolve(device_id=PEOPLE[1]["device_id"])
    assert carol is not None and dave is not None and carol.amplitude_id != named.amplitude_id != dave.amplitude_id
    dave_timeline = lg.timeline(dave.amplitude_id)
    clock.now += 86_400_000  # the job's day has come
    [ran] = lg.run_deletions()
    assert ran.day == job["day"] and carol.amplitude_id in ran.amplitude_ids
    assert dave.amplitude_id not in ran.amplitude_ids and lg.is_forgotten(carol.amplitude_id)
    assert lg.resolve(device_id=PEOPLE[1]["device_id"]) == dave and lg.timeline(dave.amplitude_id) == dave_timeline
    incremental = snapshot(lg)
    lg.rebuild()
    assert snapshot(lg) == incremental
