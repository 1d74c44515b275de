"""User mapping mixed into random traffic and deletions, checked against the reference model (hypothesis).

After every step each user ID's `global_user_id` and `mapped_user_ids` are the model's, and every
person's event count is their own events plus those of every person whose user ID is mapped onto
theirs; a refused mapping stores nothing; at the end the rebuild equals the incremental state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import IdentityLedger, InvalidRequest
from tests.domain.test_deletion_invariants import ingest
from tests.domain.test_invariants import USERS, calls
from tests.domain.test_validation import snapshot
from tests.helpers import Clock
from tests.reference_model import MappingModel, ReferenceModel

steps = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.lists(calls, min_size=1, max_size=6)),
        st.tuples(st.just("map"), st.tuples(st.sampled_from(USERS), st.sampled_from(USERS))),
        st.tuples(st.just("unmap"), st.sampled_from(USERS)),
        st.tuples(st.just("forget user"), st.sampled_from(USERS)),
    ),
    min_size=1,
    max_size=16,
)


def tracked_per_person(lg: IdentityLedger) -> dict[int, int]:
    """Tracked events per live amplitude ID, from the export (which knows nothing of mappings)."""
    counts: dict[int, int] = {}
    for tracked in lg.events():
        counts[tracked.amplitude_id] = counts.get(tracked.amplitude_id, 0) + 1
    return counts


def check(lg: IdentityLedger, model: ReferenceModel, mappings: MappingModel) -> None:
    own = tracked_per_person(lg)
    for user_id in USERS:
        if user_id not in model.binding:
            continue
        person = lg.resolve(user_id=user_id)
        assert person is not None
        assert person.global_user_id == mappings.global_of.get(user_id)
        assert person.mapped_user_ids == mappings.mapped_onto(user_id)
        others = [lg.resolve(user_id=mapped) for mapped in person.mapped_user_ids]
        people = {person.amplitude_id} | {other.amplitude_id for other in others if other is not None}
        assert lg.event_count(person.amplitude_id) == sum(own.get(live, 0) for live in people)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps)
def test_mappings_in_random_traffic_agree_with_the_model(new_url: Callable[[], str],
                                                         history: list[tuple[str, Any]]) -> None:
    with IdentityLedger(new_url(), clock=Clock()) as lg:
        model, mappings = ReferenceModel(), MappingModel()
        for kind, argument in history:
            if kind == "ingest":
                ingest(lg, model, argument)
            elif kind == "map":
                user_id, global_user_id = argument
                if mappings.refuses(user_id, global_user_id):
                    before = snapshot(lg)
                    try:
                        lg.map_user(user_id, global_user_id)
                    except InvalidRequest:
                        assert snapshot(lg) == before
                    else:
                        raise AssertionError(f"mapping {user_id} onto {global_user_id} was not refused")
                else:
                    lg.map_user(user_id, global_user_id)
                    mappings.map(user_id, global_user_id)
            elif kind == "unmap":
                lg.unmap_user(argument)
                mappings.unmap(argument)
            elif argument in model.binding:
                lg.forget(user_ids=[argument], requester="dpo", now=True)
                model.forget(model.binding[argument])
                mappings.forget(argument)
            check(lg, model, mappings)
        incremental = snapshot(lg)
        lg.rebuild()
        assert snapshot(lg) == incremental
