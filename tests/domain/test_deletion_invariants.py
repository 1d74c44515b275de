"""Deletions mixed into random traffic, checked against the reference model that forgets (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ledger import IdentityLedger
from ledger.domain.calls import device_id_for_user
from ledger.errors import DeletionRefused
from tests.domain.test_invariants import USERS, as_events, calls, check_invariants
from tests.domain.test_validation import snapshot
from tests.helpers import Clock
from tests.reference_model import ReferenceModel

steps = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.lists(calls, min_size=1, max_size=6)),
        st.tuples(st.just("forget"), st.integers(1, 10)),
        st.tuples(st.just("forget user"), st.sampled_from(USERS)),
    ),
    min_size=1,
    max_size=14,
)


def ingest(lg: IdentityLedger, model: ReferenceModel, batch: list[dict[str, Any]]) -> None:
    events = as_events(batch)
    position = lg.position
    report = lg.ingest(events)
    expected, duplicates = [], 0
    for call in events:
        device_id = call.get("device_id") or device_id_for_user(call["user_id"])
        target = model.call(device_id, call.get("user_id"), call.get("insert_id"), report.server_time)
        if target is None:
            duplicates += 1
        elif call["event_type"] != "$identify":
            expected.append(target)
    assert (report.ingested, report.duplicates) == (len(events) - duplicates, duplicates)
    assert [event.original_amplitude_id for event in lg.events(after=position)] == expected


def forget(lg: IdentityLedger, model: ReferenceModel, amplitude_id: int | None, user_id: str | None) -> set[int]:
    """Forget through the ledger and the model; an ID the model does not know must be refused."""
    if user_id is not None:
        amplitude_id = model.binding.get(user_id)
    if amplitude_id is None or not model.known(amplitude_id):
        before = snapshot(lg)
        try:
            lg.forget(amplitude_ids=[amplitude_id] if user_id is None else [], user_ids=[user_id] if user_id else [],
                      requester="dpo", now=True)
        except DeletionRefused:
            assert snapshot(lg) == before
            return set()
        raise AssertionError("an unknown ID was accepted for deletion")
    lg.forget(amplitude_ids=[amplitude_id], requester="dpo", now=True)
    person = model.forget(amplitude_id)
    assert all(lg.is_forgotten(forgotten) and lg.identity(forgotten) is None for forgotten in person)
    return person


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps)
def test_deletions_in_random_traffic_agree_with_the_model(new_url: Callable[[], str],
                                                          history: list[tuple[str, Any]]) -> None:
    with IdentityLedger(new_url(), clock=Clock()) as lg:
        model = ReferenceModel()
        bound: dict[str, int] = {}
        carried: dict[int, str] = {}
        originals: dict[int, int] = {}
        for kind, argument in history:
            if kind == "ingest":
                ingest(lg, model, argument)
            else:
                person = forget(lg, model, argument if kind == "forget" else None,
                                argument if kind == "forget user" else None)
                # A forgotten user ID may be bound anew: the invariants hold per binding.
                bound = {user_id: target for user_id, target in bound.items() if target not in person}
                carried = {target: user_id for target, user_id in carried.items() if target not in person}
            check_invariants(lg, model, bound, carried, originals)
        event(f"people forgotten: {min(len(model.forgotten), 3)}+")
        incremental = snapshot(lg)
        lg.rebuild()
        assert snapshot(lg) == incremental
