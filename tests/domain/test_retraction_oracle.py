"""Retracting a user ID equals never having seen it (docs/corrections.md), against the oracle (hypothesis).

Random histories over small pools of devices and user IDs (shared devices, sign-ins, merges
common; a placeholder user ID "guest" sent from many devices), random retractions between
them, more calls after each: the people of the corrected ledger, as sets of tracked events,
must be those of the reference model fed the same calls with every retracted user ID removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import IdentityLedger
from ledger.domain.calls import device_id_for_user
from ledger.errors import CorrectionRefused
from ledger.reads import AnswersFromReadModel
from tests.domain.test_invariants import DEVICES, USERS, as_events, calls
from tests.domain.test_validation import snapshot
from tests.helpers import Clock
from tests.reference_model import ReferenceModel

PLACEHOLDER = "guest"
CANDIDATES = [*USERS, PLACEHOLDER]
GROUPS = [{"org": "acme"}, {"org": ["acme", "globex"]}, {"team": "red"}]
#: Tracked events sometimes name groups (identify calls never here: their memberships are on no timeline).
grouped = st.tuples(calls, st.one_of(st.none(), st.sampled_from(GROUPS))).map(
    lambda pair: pair[0] if pair[1] is None or pair[0]["event_type"] == "$identify" else {**pair[0], "groups": pair[1]})
with_placeholder = st.one_of(grouped, grouped.map(lambda call: {**call, "user_id": PLACEHOLDER}))
batches = st.lists(st.lists(with_placeholder, min_size=1, max_size=6), min_size=1, max_size=6)
#: (calls before, [(user ID to retract, calls after it), ...])
histories = st.tuples(batches, st.lists(st.tuples(st.sampled_from(CANDIDATES), st.lists(
    st.lists(with_placeholder, min_size=1, max_size=6), max_size=3)), min_size=1, max_size=3))


def people_of_ledger(lg: AnswersFromReadModel) -> set[frozenset[int]]:
    """The ledger's people as sets of tracked events (numbered in ledger order)."""
    people: dict[int, set[int]] = {}
    for number, stored in enumerate(lg.events()):
        people.setdefault(stored.amplitude_id, set()).add(number)
    return {frozenset(events) for events in people.values()}


def people_of_model(events: list[dict[str, Any]], removed: set[str]) -> set[frozenset[int]]:
    """The oracle's people for the same calls, every user ID in `removed` taken out of them."""
    model = ReferenceModel()
    targets = []
    for call in events:
        user_id = call.get("user_id")
        device_id = call.get("device_id") or device_id_for_user(user_id)
        target = model.call(device_id, None if user_id in removed else user_id, call.get("insert_id"), 0)
        if target is not None and call["event_type"] != "$identify":
            targets.append(target)
    people: dict[int, set[int]] = {}
    for number, target in enumerate(targets):
        people.setdefault(model.merged_into.get(target, target), set()).add(number)
    return {frozenset(events) for events in people.values()}


def stored_user_ids(events: list[dict[str, Any]]) -> set[str]:
    """The user IDs carried by calls that were stored (a duplicate insert_id on its device is not)."""
    seen: set[tuple[str, str]] = set()
    carried = set()
    for call in events:
        device_id = call.get("device_id") or device_id_for_user(call["user_id"])
        if "insert_id" in call:
            if (device_id, call["insert_id"]) in seen:
                continue
            seen.add((device_id, call["insert_id"]))
        if "user_id" in call:
            carried.add(call["user_id"])
    return carried


def check(lg: IdentityLedger, sent: list[dict[str, Any]], retracted: set[str]) -> None:
    assert people_of_ledger(lg) == people_of_model(sent, retracted)
    # Each person's timeline (read through the streams and the re-attributions) is their share of the export.
    shares: dict[int, list[int]] = {}
    for stored in lg.events():
        shares.setdefault(stored.amplitude_id, []).append(stored.position)
    for amplitude_id, positions in shares.items():
        assert [e.position for e in lg.timeline(amplitude_id)] == positions
        assert [e.position for e in lg.timeline(amplitude_id, newest_first=True, limit=2)] == positions[::-1][:2]
        assert lg.event_count(amplitude_id) == len(positions)
    assert lg.stats().users == len(shares)
    # Memberships go with the calls that made them (docs/rules.md, Groups): a person is a member of the
    # groups their tracked events named, and a group's members are the people of the events naming it.
    named: dict[int, dict[str, set[str]]] = {}
    members: dict[tuple[str, str], set[int]] = {}
    for stored in lg.events():
        for group_type, names in stored.groups.items():
            named.setdefault(stored.amplitude_id, {}).setdefault(group_type, set()).update(names)
            for name in names:
                members.setdefault((group_type, name), set()).add(stored.amplitude_id)
    for amplitude_id in shares:
        person = lg.identity(amplitude_id)
        assert person is not None and person.groups == {group_type: sorted(names) for group_type, names
                                                        in sorted(named.get(amplitude_id, {}).items())}
    for (group_type, name), people in members.items():
        assert set(lg.group(group_type, name).amplitude_ids) == people  # type: ignore[union-attr]
    for user_id in retracted:
        assert lg.resolve(user_id=user_id) is None
    for device_id in DEVICES:
        person = lg.resolve(device_id=device_id)
        assert person == lg.read_model.resolve(device_id=device_id), "write model and projection disagree"
        if person is not None:
            assert person.user_id not in retracted
    for user_id in CANDIDATES:
        assert lg.resolve(user_id=user_id) == lg.read_model.resolve(user_id=user_id)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories)
def test_a_retraction_equals_a_ledger_that_never_saw_the_user_id(
        new_url: Callable[[], str], history: tuple[list[list[dict[str, Any]]], list[Any]]) -> None:
    before, retractions = history
    sent: list[dict[str, Any]] = []
    retracted: set[str] = set()
    order: list[str] = []
    with IdentityLedger(new_url(), clock=Clock()) as lg:
        for batch in before:
            sent += as_events(batch)
            lg.ingest(as_events(batch))
        for user_id, after in retractions:
            carried = user_id in stored_user_ids(sent)
            before, position = people_of_ledger(lg), lg.position
            try:
                correction = lg.retract_user_id(user_id, reason="test", requester="hypothesis")
            except CorrectionRefused as refusal:
                # Never carried (404), or carried only by calls stored after its retraction (409).
                assert refusal.status == (409 if user_id in retracted else 404)
                assert not carried or user_id in retracted
            else:
                assert carried and user_id not in retracted
                assert correction.user_id == user_id
                retracted.add(user_id)
                order.append(user_id)
                with lg.as_of(position) as past:  # the ledger as it stood before the correction
                    assert people_of_ledger(past) == before and past.corrections() == lg.corrections()[:-1]
            check(lg, sent, retracted)
            for batch in after:
                sent += as_events(batch)
                report = lg.ingest(as_events(batch))
                warned = {warning.index for warning in report.warnings if "retracted" in warning.message}
                assert warned == {index for index, call in enumerate(as_events(batch))
                                  if call.get("user_id") in retracted}
            check(lg, sent, retracted)
        assert [correction.user_id for correction in lg.corrections()] == order
        # Replaying the log from its first event rebuilds exactly the same projections.
        incremental = snapshot(lg)
        lg.rebuild()
        assert snapshot(lg) == incremental
