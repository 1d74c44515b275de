"""Every user property operation, through the ledger (both backends) and on its own.

Each operation is checked by the answer a caller reads back (`resolve(...).user_properties`),
so a change to how operations are applied or stored shows up here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ledger import IdentityLedger
from ledger.domain.properties import apply_operations, normalise_operations


def properties_after(lg: IdentityLedger, *operations: dict[str, Any]) -> dict[str, Any]:
    """Send each operation object as its own identify call for one user; return what the ledger holds."""
    for user_properties in operations:
        lg.identify([{"user_id": "user-props", "user_properties": user_properties}])
    person = lg.resolve(user_id="user-props")
    assert person is not None
    return person.user_properties


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        (({"$set": {"tags": ["a"]}}, {"$append": {"tags": "b"}}), {"tags": ["a", "b"]}),
        (({"$set": {"tags": "a"}}, {"$append": {"tags": ["a", "b"]}}), {"tags": ["a", "a", "b"]}),
        (({"$append": {"tags": "x"}},), {"tags": ["x"]}),
        (({"$set": {"tags": ["a"]}}, {"$prepend": {"tags": ["b", "c"]}}), {"tags": ["b", "c", "a"]}),
        (({"$set": {"tags": ["a", "b"]}}, {"$preInsert": {"tags": ["b", "z"]}}), {"tags": ["z", "a", "b"]}),
        (({"$set": {"tags": ["a", "b"]}}, {"$postInsert": {"tags": ["b", "z"]}}), {"tags": ["a", "b", "z"]}),
        (({"$set": {"tags": ["a", "b", "a"]}}, {"$remove": {"tags": "a"}}), {"tags": ["b"]}),
        (({"$set": {"plan": "pro", "seats": 3}}, {"$unset": {"plan": "-"}}), {"seats": 3}),
        (({"$set": {"plan": "pro", "seats": 3}}, {"$unset": ["plan", "seats"]}), {}),
        (({"$set": {"plan": "pro"}}, {"$clearAll": "-"}), {}),
        (({"$set": {"plan": "pro"}}, {"$set": {"seats": 1}, "$clearAll": "-"}), {"seats": 1}),
        (({"$setOnce": {"plan": "free"}}, {"$setOnce": {"plan": "pro"}}), {"plan": "free"}),
        (({"$add": {"n": 2}}, {"$add": {"n": 3.5, "s": "x"}}), {"n": 5.5}),
    ],
    ids=lambda value: str(value)[:40],
)
def test_operation_as_read_back(lg: IdentityLedger, operations: tuple[dict[str, Any], ...],
                                expected: dict[str, Any]) -> None:
    assert properties_after(lg, *operations) == expected


def test_clear_all_runs_first_whatever_its_place() -> None:
    operations = normalise_operations({"$set": {"a": 1}, "$clearAll": "-", "b": 2})
    assert list(operations) == ["$clearAll", "$set"]
    assert apply_operations({"old": True}, operations) == {"a": 1, "b": 2}


@pytest.mark.parametrize("bad", [{"$explode": {"a": 1}}, {"$append": ["a"]}, {"$set": "a"}])
def test_malformed_operations_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        normalise_operations(bad)


def test_operations_leave_their_input_untouched() -> None:
    before = {"tags": ["a"]}
    apply_operations(before, normalise_operations({"$append": {"tags": "b"}}))
    assert before == {"tags": ["a"]}


def test_evicted_aggregates_are_read_back_from_the_store(open_ledger: Callable[..., IdentityLedger]) -> None:
    """A cache far smaller than the ledger evicts on every request; answers must not change."""
    lg = open_ledger(cache_size=2)
    for n in range(6):
        lg.ingest([{"event_type": "view", "device_id": f"device-{n}", "insert_id": f"e-{n}"}])
    lg.ingest([{"event_type": "login", "device_id": "device-0", "user_id": "user-0", "insert_id": "e-login"}])
    lg.identify([{"user_id": "user-0", "user_properties": {"$append": {"seen": "again"}}}])
    person = lg.resolve(user_id="user-0")
    assert person is not None and person.amplitude_id == 1 and person.device_ids[0] == "device-0"
    assert person.user_properties == {"seen": ["again"]}
    assert [lg.resolve(device_id=f"device-{n}").amplitude_id for n in range(6)] == [1, 2, 3, 4, 5, 6]
    assert lg.stats().users == 6
