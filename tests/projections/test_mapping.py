"""User mapping (docs/rules.md, User mapping): counted as one, audited, undone exactly, never chained."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import IdentityLedger, InvalidRequest
from tests.domain.test_validation import snapshot
from tests.helpers import event
from tests.store.test_deletion_jobs import found, stored_text


def history(lg: IdentityLedger) -> None:
    lg.ingest([event("dev-a", "user-aaa", event_properties={"n": 1}), event("dev-a", "user-aaa")])
    lg.ingest([event("dev-b", "user-bbb")])
    lg.ingest([event("dev-c", "user-ccc")])


def answers(lg: Any) -> dict[str, Any]:
    people = {user_id: lg.resolve(user_id=user_id) for user_id in ("user-aaa", "user-bbb", "user-ccc")}
    return {"people": people, "stats": lg.stats(),
            "timelines": {user_id: lg.timeline(person.amplitude_id) for user_id, person in people.items()},
            "counts": {user_id: lg.event_count(person.amplitude_id) for user_id, person in people.items()}}


def test_a_mapped_user_counts_as_its_global_user_and_unmap_puts_everything_back(lg: IdentityLedger) -> None:
    history(lg)
    before = answers(lg)
    lg.map_user("user-aaa", "user-bbb", requester="ops@example.org")
    a, b = lg.resolve(user_id="user-aaa"), lg.resolve(user_id="user-bbb")
    assert a.global_user_id == "user-bbb" and b.mapped_user_ids == ["user-aaa"]
    assert lg.identity(b.amplitude_id) == b and lg.identity(a.amplitude_id) == a  # cache and tables agree
    assert lg.event_count(b.amplitude_id) == 3 and lg.event_count(a.amplitude_id) == 2
    assert [e.user_id for e in lg.timeline(b.amplitude_id)] == ["user-aaa", "user-aaa", "user-bbb"]
    assert lg.timeline(a.amplitude_id) == before["timelines"]["user-aaa"]
    assert lg.stats().users == 2 and lg.stats().events == 4
    assert a.user_properties == before["people"]["user-aaa"].user_properties  # properties are not merged
    lg.unmap_user("user-aaa", requester="ops@example.org")
    assert answers(lg) == before
    history_rows = lg.mappings("user-aaa")
    assert [(m.user_id, m.global_user_id, m.unmap, m.requester) for m in history_rows] == [
        ("user-aaa", "user-bbb", False, "ops@example.org"), ("user-aaa", "user-bbb", True, "ops@example.org")]
    assert lg.mappings("user-bbb") == history_rows and history_rows[0].server_time <= history_rows[1].server_time


def test_a_user_id_seen_only_after_its_mapping_counts_for_the_global_one(lg: IdentityLedger) -> None:
    lg.map_user("user-later", "user-bbb")
    lg.ingest([event("dev-b", "user-bbb"), event("dev-l", "user-later")])
    b = lg.resolve(user_id="user-bbb")
    assert lg.event_count(b.amplitude_id) == 2 and lg.stats().users == 1


@pytest.mark.parametrize("first, second, field", [
    (("user-aaa", "user-bbb"), ("user-bbb", "user-ccc"), "user_id"),  # a chain: B is a global user ID
    (("user-bbb", "user-ccc"), ("user-aaa", "user-bbb"), "global_user_id"),  # a chain the other way: B is mapped
    (("user-aaa", "user-bbb"), ("user-bbb", "user-aaa"), "user_id"),  # a cycle
    (("user-aaa", "user-bbb"), ("user-aaa", "user-ccc"), "user_id"),  # a remap without unmapping first
])
def test_chains_and_cycles_are_refused_and_store_nothing(lg: IdentityLedger, first: tuple[str, str],
                                                         second: tuple[str, str], field: str) -> None:
    history(lg)
    lg.map_user(*first)
    before = snapshot(lg)
    with pytest.raises(InvalidRequest) as caught:
        lg.map_users([{"user_id": "user-x1", "global_user_id": "user-y1"},
                      {"user_id": second[0], "global_user_id": second[1]}])
    assert caught.value.status == 400 and caught.value.body["mappings_with_invalid_fields"] == {field: [1]}
    assert "Mapping refused" in caught.value.body["error"]
    assert snapshot(lg) == before


def test_mapping_onto_itself_is_refused_and_repeats_change_nothing(lg: IdentityLedger) -> None:
    with pytest.raises(InvalidRequest):
        lg.map_user("user-aaa", "user-aaa")
    assert lg.map_user("user-aaa", "user-bbb").mapped == 1
    assert lg.map_user("user-aaa", "user-bbb").unchanged == 1
    assert lg.unmap_user("user-aaa").unmapped == 1
    assert lg.unmap_user("user-aaa").unchanged == 1 and lg.unmap_user("user-never").unchanged == 1
    assert len(lg.mappings()) == 2


@pytest.mark.parametrize("item, field", [
    ({"global_user_id": "user-bbb"}, "user_id"), ({"user_id": "user-aaa"}, "global_user_id"),
    ({"user_id": "user-aaa", "global_user_id": "user-bbb", "unmap": True}, "global_user_id"),
    ({"user_id": 5, "global_user_id": "user-bbb"}, "user_id"), ({"user_id": "a\x00", "global_user_id": "b"}, "user_id"),
    ({"user_id": "user-aaa", "global_user_id": "x" * 1025}, "global_user_id"),
    ({"user_id": "user-aaa", "unmap": "yes"}, "unmap"), ("user-aaa", "mapping"),
    ({"user_id": "user-aaa", "global_user_id": "user-bbb", "extra": 1}, "mapping"),
])
def test_bad_mappings_fail_the_request_naming_them(lg: IdentityLedger, item: Any, field: str) -> None:
    before = snapshot(lg)
    with pytest.raises(InvalidRequest) as caught:
        lg.map_users([{"user_id": "user-ok1", "global_user_id": "user-ok2"}, item])
    assert caught.value.body["mappings_with_invalid_fields"] == {field: [1]}
    assert snapshot(lg) == before


def test_more_than_2000_mappings_are_refused(lg: IdentityLedger) -> None:
    with pytest.raises(InvalidRequest) as caught:
        lg.map_users([{"user_id": f"user-{n}", "global_user_id": "user-g"} for n in range(2001)])
    assert caught.value.status == 413


def test_rebuild_and_past_states_answer_mappings_as_they_stood(lg: IdentityLedger) -> None:
    history(lg)
    before = lg.position
    mapped = lg.map_user("user-aaa", "user-bbb").position
    lg.unmap_user("user-aaa")
    lg.map_user("user-ccc", "user-bbb")
    incremental = snapshot(lg)
    assert incremental["ledger_user_mappings"]
    lg.rebuild()
    assert snapshot(lg) == incremental
    with lg.as_of(before) as view:
        assert view.resolve(user_id="user-aaa").global_user_id is None and view.mappings() == []
    with lg.as_of(mapped) as view:
        b = view.resolve(user_id="user-bbb")
        assert b.mapped_user_ids == ["user-aaa"] and view.event_count(b.amplitude_id) == 3
    assert lg.resolve(user_id="user-bbb").mapped_user_ids == ["user-ccc"]


def test_forgetting_either_side_leaves_no_mapping_that_names_them(lg: IdentityLedger) -> None:
    history(lg)
    lg.map_user("user-aaa", "user-bbb")
    lg.map_user("user-ccc", "user-bbb")
    lg.forget(user_ids=["user-aaa"], requester="privacy@example.org", now=True)
    assert [m.user_id for m in lg.mappings()] == ["user-ccc"]
    assert not found(stored_text(lg), "user-aaa") and found(stored_text(lg), "user-ccc")
    assert lg.resolve(user_id="user-bbb").mapped_user_ids == ["user-ccc"]
    lg.forget(user_ids=["user-bbb"], requester="privacy@example.org", now=True)
    assert lg.mappings() == [] and lg.resolve(user_id="user-ccc").global_user_id is None
    incremental = snapshot(lg)
    lg.rebuild()
    assert snapshot(lg) == incremental
    # A forgotten global user ID's stream is gone: the user ID can be used again, as after any forgetting.
    assert lg.map_user("user-ccc", "user-bbb").mapped == 1


def test_a_mapping_made_by_another_writer_shows_at_once(open_ledger: Any) -> None:
    first = open_ledger()
    history(first)
    assert first.resolve(user_id="user-aaa").global_user_id is None  # its absence is now cached
    second = open_ledger(first.url)
    second.map_user("user-aaa", "user-bbb")
    assert first.resolve(user_id="user-aaa").global_user_id == "user-bbb"
    assert first.resolve(user_id="user-bbb").mapped_user_ids == ["user-aaa"]


def test_resolving_a_known_user_asks_the_store_about_mappings_once(lg: IdentityLedger,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    history(lg)
    lg.resolve(user_id="user-aaa")
    lg._context.cache.forget_absent()  # what another writer's write does: absences of unknown IDs are asked again

    def asked(*_: Any) -> Any:
        raise AssertionError("the store was asked again whether a user ID is mapped")

    monkeypatch.setattr(lg._context.cache.log, "events_by_aggregate", asked)
    assert lg.resolve(user_id="user-aaa").global_user_id is None
