"""The consequences of docs/rules.md, checked over random sequences of requests (hypothesis).

Small pools of devices and users make shared devices, sign-ins and merges common;
duplicates and rejected requests are mixed in; batch sizes are random.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import IdentityLedger, InvalidRequest
from ledger.domain.calls import device_id_for_user
from tests.domain.test_validation import snapshot
from tests.helpers import Clock
from tests.reference_model import ReferenceModel

DEVICES = [f"device-{n}" for n in range(5)]
USERS = [f"user-{n}" for n in range(4)]

calls = st.fixed_dictionaries(
    {
        "device_id": st.one_of(st.none(), st.sampled_from(DEVICES)),
        "user_id": st.one_of(st.none(), st.none(), st.sampled_from(USERS)),
        "event_type": st.sampled_from(["view", "click", "$identify"]),
        "insert_id": st.one_of(st.none(), st.sampled_from([f"insert-{n}" for n in range(6)])),
        "user_properties": st.one_of(
            st.none(),
            st.fixed_dictionaries({"$set": st.dictionaries(st.sampled_from("abc"), st.integers(0, 3), max_size=2)}),
            st.fixed_dictionaries({"$add": st.dictionaries(st.sampled_from("abc"), st.integers(1, 3), max_size=2)}),
        ),
    }
).map(lambda call: {key: value for key, value in call.items() if value is not None})
requests = st.lists(
    st.tuples(st.lists(calls, min_size=1, max_size=6), st.booleans()),  # (calls, poison the request?)
    min_size=1,
    max_size=12,
)
BAD_EVENT = {"event_type": "x", "device_id": "null"}


def as_events(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [call if "device_id" in call or "user_id" in call else {**call, "device_id": DEVICES[0]} for call in batch]


def run(lg: IdentityLedger, history: list[tuple[list[dict[str, Any]], bool]]) -> list[dict[str, Any]]:
    """Feed the history, checking the oracle and the invariants after every request."""
    model = ReferenceModel()
    bound: dict[str, int] = {}
    carried: dict[int, str] = {}
    originals: dict[int, int] = {}
    for batch, poisoned in history:
        events = as_events(batch)
        if poisoned:
            before = snapshot(lg)
            try:
                lg.ingest([*events, BAD_EVENT])
            except InvalidRequest:
                pass
            else:
                raise AssertionError("a request with a blocked ID was accepted")
            assert snapshot(lg) == before
            continue
        position = lg.position
        report = lg.ingest(events)
        now = report.server_time
        expected, duplicates = [], 0
        for call in events:
            device_id = call.get("device_id") or device_id_for_user(call["user_id"])
            target = model.call(device_id, call.get("user_id"), call.get("insert_id"), now)
            if target is None:
                duplicates += 1
            elif call["event_type"] != "$identify":
                expected.append(target)
        assert (report.ingested, report.duplicates) == (len(events) - duplicates, duplicates)
        got = [event.original_amplitude_id for event in lg.events(after=position)]
        assert got == expected, "an event went to another amplitude ID than the rule of docs/rules.md gives"
        check_invariants(lg, model, bound, carried, originals)
    return history


def check_invariants(lg: IdentityLedger, model: ReferenceModel, bound: dict[str, int], carried: dict[int, str],
                     originals: dict[int, int]) -> None:
    merges = {merge.amplitude_id: merge.merged_amplitude_id for merge in lg.merges()}
    assert merges == model.merged_into
    for user_id in USERS:
        person = lg.resolve(user_id=user_id)
        if person is None:
            assert user_id not in bound
            continue
        # 1. A user ID is bound once, to one amplitude ID, forever.
        assert bound.setdefault(user_id, person.amplitude_id) == person.amplitude_id
        # 2. An amplitude ID carries at most one user ID and never changes it.
        assert carried.setdefault(person.amplitude_id, user_id) == user_id
        assert person.user_id == user_id
    for merged, live in merges.items():
        # 3. Only anonymous amplitude IDs are merged, always into one with a user ID.
        assert merged not in carried and live in carried
        # 4. Depth one: the live one is not itself merged.
        assert live not in merges
    for event in lg.events():
        # 5. An event keeps its original amplitude ID; its canonical one follows the merges.
        assert originals.setdefault(event.position, event.original_amplitude_id) == event.original_amplitude_id
        assert event.amplitude_id == merges.get(event.original_amplitude_id, event.original_amplitude_id)
    for device_id in DEVICES:
        live = lg.resolve(device_id=device_id)
        assert live == lg.read_model.resolve(device_id=device_id), "write model and projection disagree"
        assert (live.amplitude_id if live else None) == model.pointer.get(device_id)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=requests)
def test_spec_invariants_hold_for_any_sequence(new_url: Callable[[], str],
                                               history: list[tuple[list[dict[str, Any]], bool]]) -> None:
    with IdentityLedger(new_url(), clock=Clock()) as lg:
        run(lg, history)
        # 6. Replaying the log from its first event rebuilds exactly the same projections.
        incremental = snapshot(lg)
        lg.rebuild()
        assert snapshot(lg) == incremental


def test_duplicates_are_counted_and_dropped(open_ledger: Callable[..., IdentityLedger]) -> None:
    lg = open_ledger()
    first = lg.ingest([{"event_type": "x", "device_id": "device-1", "insert_id": "same"}])
    again = lg.ingest([{"event_type": "x", "device_id": "device-1", "insert_id": "same"},
                       {"event_type": "x", "device_id": "device-2", "insert_id": "same"}])
    assert (first.ingested, first.duplicates) == (1, 0)
    assert (again.ingested, again.duplicates) == (1, 1)
    assert lg.stats().events == 2
    assert msgspec.json.encode(lg.events()).count(b'"same"') == 2
