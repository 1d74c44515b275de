"""Groups (docs/rules.md, Groups): membership from calls, group properties from group identify calls."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import IdentityLedger, InvalidRequest
from tests.domain.test_validation import rejected, snapshot
from tests.helpers import event

ACME = {"org": "acme"}


def group_identify(lg: IdentityLedger, properties: dict[str, Any], group: dict[str, str] = ACME) -> None:
    ((group_type, group_value),) = group.items()
    lg.group_identify([{"group_type": group_type, "group_value": group_value, "group_properties": properties}])


def history(lg: IdentityLedger) -> list[int]:
    """Alice joins acme by an event, Bob by an identify call (as SDKs' set_group does), an anonymous
    device joins two groups and is merged into Bob; acme's properties change in between."""
    return [
        lg.ingest([event("dev-alice", "alice-1", groups={"org": "acme"})]).position,
        lg.identify([{"device_id": "dev-bob", "user_id": "bob-22", "groups": {"org": ["acme", "globex"]},
                      "user_properties": {"$set": {"org": ["acme", "globex"]}}}]).position,
        lg.ingest([event("dev-bob", event_type="$groupidentify", groups=ACME,
                         group_properties={"$set": {"plan": "pro"}, "$add": {"seats": 5}})]).position,
        lg.ingest([event("dev-anon", groups={"team": "red"})]).position,
        lg.ingest([event("dev-anon", "bob-22")]).position,
        lg.group_identify([{"group_type": "org", "group_value": "acme",
                            "group_properties": {"$add": {"seats": 2}, "$append": {"tags": "big"},
                                                 "$unset": {"trial": "-"}, "$setOnce": {"plan": "free"}}},
                           {"group_type": "org", "group_value": "globex",
                            "group_properties": {"$prepend": {"tags": "new"}}}]).position,
    ]


def test_calls_naming_groups_make_their_person_a_member(lg: IdentityLedger) -> None:
    history(lg)
    alice, bob = lg.resolve(user_id="alice-1"), lg.resolve(user_id="bob-22")
    assert alice is not None and bob is not None
    assert alice.groups == {"org": ["acme"]}
    assert bob.groups == {"org": ["acme", "globex"], "team": ["red"]}  # the merged anonymous ID's group too
    assert lg.identity(bob.amplitude_id) == bob  # the cache's answer and the tables' agree
    acme = lg.group("org", "acme")
    assert acme is not None and acme.amplitude_ids == [alice.amplitude_id, bob.amplitude_id]
    assert [member.amplitude_id for member in acme.members] == [alice.amplitude_id, bob.amplitude_id]
    red = lg.group("team", "red")
    assert red is not None and red.amplitude_ids == [bob.amplitude_id] and red.members[0].amplitude_id != bob.amplitude_id
    assert lg.group("org", "initech") is None


def test_group_identify_applies_the_operations_and_counts_no_event(lg: IdentityLedger) -> None:
    history(lg)
    acme, globex = lg.group("org", "acme"), lg.group("org", "globex")
    assert acme is not None and acme.properties == {"plan": "pro", "seats": 7, "tags": ["big"]}
    assert globex is not None and globex.properties == {"tags": ["new"]}
    assert lg.stats().events == 3  # the $groupidentify event is not a tracked event of anyone
    assert lg.resolve(device_id="dev-bob").user_properties == {"org": ["acme", "globex"]}


def test_past_states_answer_groups_as_they_stood(lg: IdentityLedger) -> None:
    positions = history(lg)
    with lg.as_of(positions[0]) as view:
        assert view.group("org", "acme").properties == {}
        assert view.resolve(user_id="alice-1").groups == {"org": ["acme"]}
        assert view.resolve(user_id="bob-22") is None
    with lg.as_of(positions[2]) as view:
        assert view.group("org", "acme").properties == {"plan": "pro", "seats": 5}


def test_rebuild_gives_the_same_rows_as_the_incremental_path(lg: IdentityLedger) -> None:
    history(lg)
    incremental = snapshot(lg)
    assert incremental["ledger_group_members"] and incremental["ledger_group_properties"]
    lg.rebuild()
    assert snapshot(lg) == incremental


@pytest.mark.parametrize("groups", [
    "acme", {"org": 5}, {"org": ["a", 5]}, {"": "acme"}, {"org": ""}, {"org": "a\x00b"}, {"org": "x" * 1025},
    {f"type{n}": "a" for n in range(6)}, {"org": [f"g{n}" for n in range(11)]},
    {"a": [f"a{n}" for n in range(6)], "b": [f"b{n}" for n in range(5)]},
])
def test_bad_groups_fail_the_request_naming_the_event(lg: IdentityLedger, groups: Any) -> None:
    refused = rejected(lg, [event("dev-ok-1"), event("dev-ok-2", groups=groups)])
    assert refused.body["events_with_invalid_fields"] == {"groups": [1]}


def test_the_limits_themselves_are_accepted(lg: IdentityLedger) -> None:
    groups = {"a": [f"a{n}" for n in range(6)], "b": "b", "c": "c", "d": "d", "e": ["x" * 1024]}
    lg.ingest([event("dev-limits", groups=groups)])
    assert lg.resolve(device_id="dev-limits").groups == {key: sorted(v if isinstance(v, list) else [v])
                                                         for key, v in groups.items()}


@pytest.mark.parametrize("properties, field", [
    ({"$remove": {"a": 1}}, "group_properties"), ({"$clearAll": "-"}, "group_properties"),
    ("plan", "group_properties"), ({"a": "x\x00"}, "group_properties"), ({"$set": {"n": 2**64}}, "group_properties"),
])
def test_bad_group_identify_events_fail_the_request(lg: IdentityLedger, properties: Any, field: str) -> None:
    refused = rejected(lg, [event("dev-gi", event_type="$groupidentify", groups=ACME, group_properties=properties)])
    assert refused.body["events_with_invalid_fields"] == {field: [0]}
    refused = rejected(lg, [event("dev-gi", event_type="$groupidentify", group_properties={"a": 1})])
    assert refused.body["events_with_missing_fields"] == {"groups": [0]}


@pytest.mark.parametrize("item, field", [
    ({"group_value": "acme"}, "group_type"), ({"group_type": "org"}, "group_value"),
    ({"group_type": ["org"], "group_value": "acme"}, "group_type"), ({"group_type": "org", "group_value": 7}, "group_value"),
    ({"group_type": "org", "group_value": "a\x00"}, "group_value"),
    ({"group_type": "org", "group_value": "acme", "group_properties": {"$remove": {"a": 1}}}, "group_properties"),
    ({"group_type": "org", "group_value": "acme", "group_properties": {"n": 10**30}}, "group_properties"),
])
def test_bad_identifications_fail_the_request_naming_them(lg: IdentityLedger, item: Any, field: str) -> None:
    before = snapshot(lg)
    with pytest.raises(InvalidRequest) as caught:
        lg.group_identify([{"group_type": "org", "group_value": "fine", "group_properties": {"a": 1}}, item])
    fields = {**caught.value.body.get("identifications_with_invalid_fields", {}),
              **caught.value.body.get("identifications_with_missing_fields", {})}
    assert caught.value.status == 400 and fields == {field: [1]}
    assert snapshot(lg) == before


def test_more_than_1024_identifications_are_refused(lg: IdentityLedger) -> None:
    with pytest.raises(InvalidRequest) as caught:
        lg.group_identify([{"group_type": "org", "group_value": f"g{n}"} for n in range(1025)])
    assert caught.value.status == 413


def test_a_group_update_past_the_property_limits_names_its_index(lg: IdentityLedger) -> None:
    group_identify(lg, {"$add": {"n": 2**63 - 1}})
    with pytest.raises(InvalidRequest) as caught:
        lg.group_identify([{"group_type": "org", "group_value": "other", "group_properties": {"a": 1}},
                           {"group_type": "org", "group_value": "acme", "group_properties": {"$add": {"n": 1}}}])
    assert caught.value.body["events_with_invalid_fields"] == {"group_properties": [1]}
    assert lg.group("org", "other") is None


def test_tracked_events_keep_their_groups_and_the_export_carries_them_again(open_ledger: Any) -> None:
    lg = open_ledger()
    lg.ingest([event("dev-ann", "ann-11", groups={"org": ["acme", "globex"]}), event("dev-ann", "ann-11")])
    first, second = lg.timeline(lg.resolve(user_id="ann-11").amplitude_id)
    assert first.groups == {"org": ["acme", "globex"]} and second.groups == {}
    again = open_ledger()
    again.replay(lg.export())
    ann = again.resolve(user_id="ann-11")
    assert ann.groups == {"org": ["acme", "globex"]} and again.group("org", "acme").amplitude_ids == [ann.amplitude_id]


def test_a_resent_group_identify_changes_nothing(lg: IdentityLedger) -> None:
    """A `$groupidentify` event is deduplicated by (device ID, insert_id) like any call: the retried
    `$add` does not add twice; another insert_id, or another device, is another call."""
    add = event("dev-gi-1", event_type="$groupidentify", groups=ACME, group_properties={"$add": {"seats": 5}},
                insert_id="gi-1")
    assert lg.ingest([add]).duplicates == 0
    before = snapshot(lg)
    again = lg.ingest([add, add])
    assert (again.ingested, again.duplicates) == (0, 2) and snapshot(lg)["ledger_group_properties"] == \
        before["ledger_group_properties"]
    assert lg.group("org", "acme").properties == {"seats": 5}
    lg.ingest([{**add, "insert_id": "gi-2"}, {**add, "device_id": "dev-gi-2"}])
    assert lg.group("org", "acme").properties == {"seats": 15}
    # Its receipts and tracked events' are apart: a track with the same key is not a duplicate of it.
    assert lg.ingest([event("dev-gi-1", event_type="view", insert_id="gi-1")]).duplicates == 0
    assert lg.ingest([event("dev-gi-1", event_type="view", insert_id="gi-1")]).duplicates == 1


def test_each_event_keeps_the_group_properties_of_its_time(open_ledger: Any) -> None:
    """An update of a group changes only later events; every reader (timeline, events(), a past
    view, a rebuilt read side, a replayed export) answers each event with its own time's properties."""
    lg = open_ledger()
    lg.ingest([event("dev-ann", "ann-11", groups=ACME)])  # before any update: no properties
    group_identify(lg, {"$set": {"plan": "free"}, "$add": {"seats": 1}})
    lg.ingest([event("dev-ann", "ann-11", groups={"org": ["acme", "globex"]}), event("dev-ann", "ann-11")])
    group_identify(lg, {"$set": {"plan": "pro"}, "$add": {"seats": 4}})
    group_identify(lg, {"$set": {"name": "Globex"}}, {"org": "globex"})
    lg.ingest([event("dev-ann", "ann-11", groups={"org": ["acme", "globex"]})])
    group_identify(lg, {"$unset": {"plan": "-", "seats": "-"}})
    lg.ingest([event("dev-ann", "ann-11", groups=ACME)])
    expected = [{}, {"org": {"acme": {"plan": "free", "seats": 1}}}, {},
                {"org": {"acme": {"plan": "pro", "seats": 5}, "globex": {"name": "Globex"}}}, {}]

    def answered(reader: Any) -> list[dict[str, Any]]:
        return [found.group_properties for found in reader.timeline(reader.resolve(user_id="ann-11").amplitude_id)]

    timeline = lg.timeline(lg.resolve(user_id="ann-11").amplitude_id)
    assert answered(lg) == expected and [found.group_properties for found in lg.events()] == expected
    assert [found.group_properties for found in reversed(
        lg.timeline(timeline[0].amplitude_id, newest_first=True, limit=2))] == expected[3:]
    assert lg.group("org", "acme").properties == {}  # today's properties are not the events'
    for number, found in enumerate(timeline):
        with lg.as_of(found.position) as view:
            assert answered(view) == expected[:number + 1]
    lg.rebuild()
    assert answered(lg) == expected
    again = open_ledger()
    again.replay(lg.export())
    assert answered(again) == expected


def test_a_correction_carries_memberships_to_the_split_off_people(open_ledger: Any) -> None:
    """Two phones sign in with the placeholder "None" (one person), each naming its own org (by an
    event and by an identify call, as set_group does); a third person shares nothing. After the
    retraction each split-off person is a member of the groups its own calls named, the retired
    amplitude ID of none; before it, as it stood; a rebuild and a replayed export agree."""
    lg = open_ledger()
    lg.ingest([event("phone-ann", "None", groups={"org": "acme"}), event("phone-cy", "cy-33", groups={"org": "initech"})],
              min_id_length=4)
    lg.identify([{"device_id": "phone-bob", "user_id": "None", "groups": {"org": "globex", "team": ["red"]}}],
                min_id_length=4)
    lg.ingest([event("phone-bob", "None", groups={"org": "acme"})], min_id_length=4)  # Bob's call named acme too
    merged = lg.resolve(user_id="None")
    before = lg.position
    assert merged.groups == {"org": ["acme", "globex"], "team": ["red"]}

    correction = lg.retract_user_id("None", reason="placeholder user ID", requester="ops@example.com")

    ann, bob, cy = (lg.resolve(device_id=device_id) for device_id in ("phone-ann", "phone-bob", "phone-cy"))
    assert ann.groups == {"org": ["acme"]} and bob.groups == {"org": ["acme", "globex"], "team": ["red"]}
    assert cy.groups == {"org": ["initech"]} and lg.identity(ann.amplitude_id) == ann  # cache == tables
    acme = lg.group("org", "acme")
    assert acme.amplitude_ids == [ann.amplitude_id, bob.amplitude_id]
    assert [member.amplitude_id for member in acme.members] == [ann.amplitude_id, bob.amplitude_id]
    assert all(member.position > correction.position and member.server_time == correction.server_time
               for member in acme.members)  # joined again by the correction, at its time
    assert lg.group("org", "globex").amplitude_ids == [bob.amplitude_id]
    assert lg.group("org", "initech").amplitude_ids == [cy.amplitude_id]
    with lg.as_of(before) as view:
        assert view.group("org", "acme").amplitude_ids == [merged.amplitude_id]
        assert view.resolve(device_id="phone-ann").groups == merged.groups

    incremental = snapshot(lg)
    lg.rebuild()
    assert snapshot(lg) == incremental
    again = open_ledger()
    again.replay(lg.export())
    ann_again, bob_again = (again.resolve(device_id=device_id) for device_id in ("phone-ann", "phone-bob"))
    assert (ann_again.groups, bob_again.groups) == (ann.groups, bob.groups)
    assert again.group("org", "acme").amplitude_ids == [ann_again.amplitude_id, bob_again.amplitude_id]
