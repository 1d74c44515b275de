"""Groups and user mappings survive the export round trip: group identify calls and mappings are records."""

from __future__ import annotations

from collections.abc import Callable

from ledger import IdentityLedger
from ledger.history.records import GROUP_IDENTIFY, MAPPING
from tests.export.people import groups, mappings, people

DEVICES = ["kiosk-1", "phone-22", "laptop-3"]
USERS = ["maria-1", "frank-1", "olga-77", "team-login"]
GROUPS = [("org", "acme"), ("org", "globex"), ("plan", "gold")]


def history(lg: IdentityLedger) -> None:
    """Memberships, group identify calls (the API's and a `$groupidentify` event naming two groups),
    mappings, an unmapping and a remapping, with tracked events between them."""
    lg.ingest([{"device_id": "kiosk-1", "user_id": "maria-1", "event_type": "view", "groups": {"org": "acme"}},
               {"device_id": "phone-22", "user_id": "frank-1", "event_type": "view"}])
    lg.group_identify([{"group_type": "org", "group_value": "acme",
                        "group_properties": {"$set": {"tier": "pro"}, "$add": {"seats": 5}}}])
    lg.ingest([{"device_id": "kiosk-1", "event_type": "$groupidentify", "groups": {"org": ["acme", "globex"]},
                "group_properties": {"$add": {"seats": 2}, "$setOnce": {"since": 2024}}}])
    lg.identify([{"device_id": "laptop-3", "user_id": "olga-77", "groups": {"plan": "gold", "org": ["globex"]}}])
    lg.map_user("frank-1", "maria-1", requester="support")
    lg.ingest([{"device_id": "phone-22", "user_id": "frank-1", "event_type": "after-mapping"}])
    lg.unmap_user("frank-1", requester="support")
    lg.map_users([{"user_id": "frank-1", "global_user_id": "olga-77"},
                  {"user_id": "team-login", "global_user_id": "olga-77"}], requester="ops")
    lg.group_identify([{"group_type": "org", "group_value": "acme", "group_properties": {"$unset": {"tier": "-"}}}])


def described(lg: IdentityLedger) -> tuple[object, ...]:
    return people(lg, DEVICES, USERS), groups(lg, GROUPS), mappings(lg)


def test_groups_and_mappings_are_replayed_as_they_were(open_ledger: Callable[..., IdentityLedger]) -> None:
    source, copy = open_ledger(), open_ledger()
    history(source)
    records = list(source.export())
    identifications = [record for record in records if record["record"] == GROUP_IDENTIFY]
    assert [(record["group_value"], record["group_properties"]) for record in identifications] == [
        ("acme", {"$set": {"tier": "pro"}, "$add": {"seats": 5}}),
        ("acme", {"$add": {"seats": 2}, "$setOnce": {"since": 2024}}),
        ("globex", {"$add": {"seats": 2}, "$setOnce": {"since": 2024}}),
        ("acme", {"$unset": {"tier": "-"}})]
    assert [(record["user_id"], record["global_user_id"], record["unmap"], record["requester"])
            for record in records if record["record"] == MAPPING] == [
        ("frank-1", "maria-1", False, "support"), ("frank-1", "maria-1", True, "support"),
        ("frank-1", "olga-77", False, "ops"), ("team-login", "olga-77", False, "ops")]
    replayed = copy.replay(records)
    assert (replayed.group_identifications, replayed.mappings, replayed.unmappings) == (4, 3, 1)
    assert described(copy) == described(source)
    olga = copy.resolve(user_id="olga-77")
    assert olga is not None and olga.mapped_user_ids == ["frank-1", "team-login"]
    assert olga.groups == {"org": ["globex"], "plan": ["gold"]}
    acme = copy.group("org", "acme")
    assert acme is not None and acme.properties == {"seats": 7, "since": 2024}
    # Recorded server times are kept: the mapping history is the same, times and requesters too.
    assert [entry.server_time for entry in copy.mappings()] == [
        record["server_upload_time"] for record in records if record["record"] == MAPPING]


def test_since_and_as_of_concatenate_to_the_whole(open_ledger: Callable[..., IdentityLedger]) -> None:
    source = open_ledger()
    history(source)
    whole = list(source.export())
    for middle in range(source.position + 1):
        assert list(source.export(as_of=middle)) + list(source.export(after=middle)) == whole
    middle = next(record["position"] for record in whole if record["record"] == MAPPING)
    copy = open_ledger()
    copy.replay(source.export(as_of=middle))
    copy.replay(source.export(after=middle))
    assert described(copy) == described(source)


def test_a_mapping_naming_a_forgotten_person_is_not_exported(open_ledger: Callable[..., IdentityLedger]) -> None:
    source, copy = open_ledger(), open_ledger()
    history(source)
    source.forget(user_ids=["olga-77"], requester="dpo", now=True)
    records = list(source.export())
    assert "olga-77" not in str(records) and "laptop-3" not in str(records)
    assert [(record["user_id"], record["global_user_id"], record["unmap"])
            for record in records if record["record"] == MAPPING] == [
        ("frank-1", "maria-1", False), ("frank-1", "maria-1", True)]
    copy.replay(records)
    assert described(copy) == described(source)
    frank = copy.resolve(user_id="frank-1")
    assert frank is not None and frank.global_user_id is None
