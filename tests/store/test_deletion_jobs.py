"""Forgetting a person (docs/privacy.md): nothing of them can be read back, and the ledger stays whole."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import IdentityLedger
from ledger.errors import DeletionRefused, KeyFileMissing, WrongKeyFile
from tests.domain.test_validation import snapshot
from tests.helpers import Clock, connected, event

DAY = 24 * 3600 * 1000
#: Distinctive strings of the person who is forgotten ...
ALICE = {"user_id": "alice.q7x@example.org", "device_id": "dev-alice-k2p9", "insert_id": "ins-alice-z81m",
         "event_value": "evprop-alice-w3n5", "user_value": "userprop-alice-v6t4",
         "anonymous_device": "dev-anon-alice-h4j8"}
#: ... and of a person who is not (the search must find these, so it can fail).
BOB = {"user_id": "bob.r5y@example.org", "device_id": "dev-bob-m3q7", "insert_id": "ins-bob-c9d2",
       "event_value": "evprop-bob-f1g6", "user_value": "userprop-bob-s8u3"}
SHARED = "dev-shared-kiosk-1"


def person_events(who: dict[str, str]) -> list[dict[str, Any]]:
    return [
        event(who["device_id"], who["user_id"], insert_id=who["insert_id"],
              event_properties={"label": who["event_value"]}, user_properties={"$set": {"plan": who["user_value"]}}),
        event(who["device_id"], None, event_properties={"n": 1}),
        event(SHARED, who["user_id"]),
    ]


def history(lg: IdentityLedger) -> None:
    """Alice: her own device, a kiosk shared with Bob, an anonymous device merged into her."""
    lg.ingest(person_events(ALICE))
    lg.ingest([event(ALICE["anonymous_device"], None)])
    lg.ingest([event(ALICE["anonymous_device"], ALICE["user_id"])])  # merges the anonymous ID into Alice
    lg.ingest(person_events(BOB))
    lg.identify([{"user_id": ALICE["user_id"], "device_id": ALICE["device_id"],
                  "user_properties": {"$set": {"city": ALICE["user_value"] + "-city"}}}])


def stored_text(lg: IdentityLedger) -> bytes:
    """Everything the database holds: the SQLite file and its WAL as bytes; on PostgreSQL every
    row of every table of the ledger's schema as text (bytea shows as hex, searched too)."""
    url = sa.engine.make_url(lg.url)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        return b"".join(open(name, "rb").read() for name in (path, path + "-wal") if os.path.exists(name))
    schema = url.query.get("schema", "public")
    with connected(lg.url) as connection:
        tables = connection.execute(sa.text("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = :schema ORDER BY table_name"),
                                    {"schema": schema}).scalars().all()
        # In a fixed order, so that two readings compare: PostgreSQL returns rows as they lie in the heap.
        rows = [row for table in tables for row in sorted(
            connection.execute(sa.text(f'SELECT t::text FROM "{schema}"."{table}" t')).scalars())]
    return "\n".join(rows).encode()


def found(stored: bytes, text: str) -> bool:
    return text.encode() in stored or text.encode().hex().encode() in stored


def forget_alice(lg: IdentityLedger, **options: Any) -> dict[str, Any]:
    return lg.forget(user_ids=[ALICE["user_id"]], requester="privacy@example.org", now=True, **options)


def test_a_forgotten_person_cannot_be_read_back_from_the_database(lg: IdentityLedger) -> None:
    history(lg)
    before = stored_text(lg)
    assert all(found(before, text) for text in [*ALICE.values(), *BOB.values()])
    job = forget_alice(lg)
    assert job["status"] == "done" and [entry["amplitude_id"] for entry in job["amplitude_ids"]] == [1]
    stored = stored_text(lg)
    assert [text for text in ALICE.values() if found(stored, text)] == []
    assert [text for text in BOB.values() if not found(stored, text)] == []  # the search can fail
    assert found(stored, SHARED), "a device shared with someone not forgotten stays, as their data"


def test_after_forgetting_the_ledger_answers_as_if_the_person_were_forgotten(lg: IdentityLedger) -> None:
    history(lg)
    alice = lg.resolve(user_id=ALICE["user_id"])
    assert alice is not None and alice.merged_amplitude_ids
    bob = lg.resolve(user_id=BOB["user_id"])
    forget_alice(lg)
    ids = [alice.amplitude_id, *alice.merged_amplitude_ids]
    assert lg.resolve(user_id=ALICE["user_id"]) is None
    assert lg.resolve(device_id=ALICE["device_id"]) is None
    assert all(lg.identity(amplitude_id) is None and lg.is_forgotten(amplitude_id) for amplitude_id in ids)
    assert all(lg.timeline(amplitude_id) == [] for amplitude_id in ids)
    assert lg.audit(amplitude_id=alice.amplitude_id) == []
    assert not lg.is_forgotten(bob.amplitude_id) and lg.resolve(user_id=BOB["user_id"]) == bob
    assert {event.amplitude_id for event in lg.events()} == {bob.amplitude_id}
    assert lg.merges() == []
    assert all(entry.user_id in (None, BOB["user_id"]) for entry in lg.audit(device_id=SHARED))


def test_incremental_equals_rebuild_and_every_past_state_replays(lg: IdentityLedger) -> None:
    history(lg)
    forget_alice(lg)
    lg.ingest([event(SHARED, None), event(ALICE["device_id"], ALICE["user_id"])])
    incremental = snapshot(lg)
    lg.rebuild()
    assert snapshot(lg) == incremental
    stored = stored_text(lg)
    for position in range(lg.position + 1):
        with lg.as_of(position) as view:
            assert view.resolve(user_id=BOB["user_id"]) is None or view.resolve(user_id=BOB["user_id"]).user_id \
                == BOB["user_id"]
            for amplitude_id in (1, 2):  # Alice's: never visible again, at any position
                assert view.identity(amplitude_id) is None and view.timeline(amplitude_id) == []
    assert stored == stored_text(lg), "replaying changed the stored data"


def test_a_person_tracked_again_after_forgetting_is_a_new_amplitude_id(lg: IdentityLedger) -> None:
    history(lg)
    old = lg.resolve(user_id=ALICE["user_id"])
    forget_alice(lg)
    lg.ingest(person_events(ALICE))
    new = lg.resolve(user_id=ALICE["user_id"])
    assert new is not None and new.amplitude_id > max(old.amplitude_id, *old.merged_amplitude_ids)
    assert lg.resolve(device_id=ALICE["device_id"]).amplitude_id == new.amplitude_id
    assert lg.resolve(device_id=SHARED).amplitude_id == new.amplitude_id
    # Her old insert_id is no duplicate any more: its receipt went with her.
    assert len(lg.timeline(new.amplitude_id)) == 3


def test_a_shared_device_pointing_to_a_forgotten_person_starts_a_new_one(lg: IdentityLedger) -> None:
    lg.ingest([event(SHARED, BOB["user_id"]), event(SHARED, ALICE["user_id"])])
    forget_alice(lg)
    assert lg.resolve(device_id=SHARED) is None
    lg.ingest([event(SHARED, None)])
    fresh = lg.resolve(device_id=SHARED)
    assert fresh is not None and fresh.user_id is None and fresh.amplitude_id == 3
    lg.ingest([event(SHARED, BOB["user_id"])])  # anonymous, so merged into Bob as always
    assert lg.resolve(user_id=BOB["user_id"]).merged_amplitude_ids == [3]


def test_merged_people_are_forgotten_whole_from_any_of_their_amplitude_ids(lg: IdentityLedger) -> None:
    history(lg)
    alice = lg.resolve(user_id=ALICE["user_id"])
    merged = alice.merged_amplitude_ids[0]
    job = lg.forget(amplitude_ids=[merged], requester="dpo", now=True)
    assert [entry["amplitude_id"] for entry in job["amplitude_ids"]] == [merged]
    assert lg.resolve(user_id=ALICE["user_id"]) is None and lg.is_forgotten(alice.amplitude_id)
    assert [text for text in ALICE.values() if found(stored_text(lg), text)] == []


def test_a_scheduled_job_runs_on_its_day_and_can_be_withdrawn_from_before(lg: IdentityLedger, clock: Clock) -> None:
    history(lg)
    bob = lg.resolve(user_id=BOB["user_id"])
    job = lg.forget(user_ids=[ALICE["user_id"], BOB["user_id"]], requester="dpo")
    day = dt.date.fromisoformat(job["day"])
    assert job["status"] == "staging" and day == dt.date(2023, 11, 15)
    assert lg.run_deletions() == []  # not due yet
    assert lg.withdraw_deletion(bob.amplitude_id, day)["amplitude_ids"] == [
        {"amplitude_id": 1, "requester": "dpo", "requested_on_day": "2023-11-14"}]
    clock.now += DAY
    [ran] = lg.run_deletions()
    assert (ran.day, ran.amplitude_ids, ran.reclaimed) == ("2023-11-15", [1, 2], True)
    assert lg.deletions(day, day) == [{"day": "2023-11-15", "status": "done", "amplitude_ids": [
        {"amplitude_id": 1, "requester": "dpo", "requested_on_day": "2023-11-14"}]}]
    assert lg.resolve(user_id=ALICE["user_id"]) is None and lg.resolve(user_id=BOB["user_id"]) == bob
    with pytest.raises(DeletionRefused, match="not waiting"):
        lg.withdraw_deletion(1, day)
    assert lg.run_deletions() == []


def test_the_deletion_fact_is_audited_without_personal_data(lg: IdentityLedger) -> None:
    history(lg)
    forget_alice(lg)
    facts = [fields for _, topic, fields in lg._context.log.read(0, lg.position, 10_000) if topic == "DeletionJob.Ran"]
    assert facts == [{"day": "2023-11-14", "requested": [1], "forgotten": [1, 2],
                      "requesters": ["privacy@example.org"], "server_time": facts[0]["server_time"],
                      "timestamp": facts[0]["timestamp"]}]


@pytest.mark.parametrize("request_fields, error", [
    ({"user_ids": ["nobody-known"]}, "Unknown IDs"),
    ({"amplitude_ids": [99]}, "Unknown IDs"),
    ({"amplitude_ids": [0]}, "whole numbers"),
    ({"amplitude_ids": [2**63]}, "whole numbers"),
    ({"amplitude_ids": [True]}, "whole numbers"),
    ({"user_ids": ["a\x00b"]}, "without NUL"),
    ({"user_ids": ["x" * 1025]}, "at most 1024"),
    ({"amplitude_ids": list(range(1, 102))}, "at most 100"),
    ({}, "give amplitude_ids or user_ids"),
    ({"amplitude_ids": [1], "requester": ""}, "requester"),
    ({"amplitude_ids": [1], "requester": "a\x00"}, "requester"),
])
def test_bad_deletion_requests_are_refused_and_store_nothing(lg: IdentityLedger, request_fields: dict[str, Any],
                                                             error: str) -> None:
    lg.ingest([event("device-1", "user-1")])
    before = snapshot(lg)
    with pytest.raises(DeletionRefused, match=error):
        lg.forget(**{"requester": "dpo", **request_fields})
    assert snapshot(lg) == before


def test_unknown_ids_are_skipped_when_asked(lg: IdentityLedger) -> None:
    lg.ingest([event("device-1", "user-1")])
    job = lg.forget(user_ids=["nobody-known", "user-1"], amplitude_ids=[99], requester="dpo",
                    ignore_invalid_id=True, now=True)
    assert [entry["amplitude_id"] for entry in job["amplitude_ids"]] == [1]
    with pytest.raises(DeletionRefused) as refused:
        lg.forget(user_ids=["user-1"], amplitude_ids=[1], requester="dpo")
    assert refused.value.body["invalid_user_ids"] == ["user-1"] and refused.value.body["invalid_amplitude_ids"] == [1]


def test_a_ledger_opened_without_its_key_file_refuses_and_keys_nothing_anew(
        open_ledger: Callable[..., IdentityLedger], new_url: Callable[[], str], tmp_path: Any) -> None:
    url = new_url()
    key_file = str(tmp_path / "ledger.key")
    open_ledger(url, key_file=key_file).ingest([event("device-1", "user-1")])
    assert oct(os.stat(key_file).st_mode & 0o777) == "0o600"
    with pytest.raises(KeyFileMissing, match="missing"):
        IdentityLedger(url, key_file=str(tmp_path / "elsewhere.key"))
    with open(tmp_path / "other.key", "w") as other:
        other.write("ab" * 32)
    with pytest.raises(WrongKeyFile, match="not this ledger's"):
        IdentityLedger(url, key_file=str(tmp_path / "other.key"))
    with IdentityLedger(url, key_file=key_file) as again:
        assert again.resolve(user_id="user-1") is not None


def test_stored_keys_do_not_reveal_ids(lg: IdentityLedger) -> None:
    """A guessed user ID hashed as 0.1.0 did (uuid5) finds no row: the keys are keyed by the secret."""
    from ledger.domain.keys import UNKEYED
    lg.ingest([event("device-1", "user-1")])
    with connected(lg.url) as connection:
        stored = {str(row[0]).replace("-", "") for row in connection.execute(
            sa.text(f"SELECT originator_id FROM {lg.diagnostics().events_table}"))}
    assert UNKEYED.user("user-1").hex not in stored and UNKEYED.device("device-1").hex not in stored
    assert lg._context.cache.keys.user("user-1").hex in stored


@pytest.mark.parametrize("follows_the_log", [True, False])
def test_another_writer_never_writes_to_a_person_forgotten_meanwhile(
        open_ledger: Callable[..., IdentityLedger], new_url: Callable[[], str], monkeypatch: pytest.MonkeyPatch,
        follows_the_log: bool) -> None:
    """A second process holding the person in its cache: its follower drops the cache when it sees the
    job, and a request resolved before it saw the job is resolved again in its own transaction."""
    url = new_url()
    first = open_ledger(url)
    first.ingest(person_events(ALICE))
    other = open_ledger(url)
    assert other.resolve(user_id=ALICE["user_id"]).amplitude_id == 1  # cached there
    first.forget(user_ids=[ALICE["user_id"]], requester="dpo", now=True)
    if not follows_the_log:  # the job commits between its look at the log and its transaction
        monkeypatch.setattr(other._context.follower, "sync", lambda: other._context.follower.seen)
    other.ingest([event(ALICE["device_id"], ALICE["user_id"])])
    monkeypatch.undo()
    again = other.resolve(user_id=ALICE["user_id"])
    assert again is not None and again.amplitude_id == 2 and other.timeline(1) == []
    assert first.resolve(user_id=ALICE["user_id"]) == again


def test_rekeying_a_ledger_written_before_keys_keeps_its_duplicates(new_url: Callable[[], str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Receipts are rewritten too: a retry of an event stored before the rekey is still a duplicate."""
    import ledger.write_context
    from ledger.domain.keys import UNKEYED
    from tests.helpers import Clock

    url = new_url()
    monkeypatch.setattr(ledger.write_context, "open_keys", lambda *_args, **_kwargs: UNKEYED)  # as before keys existed
    sent = [event("device-1", "user-1"), event("device-2", None), event("device-1", None)]
    with IdentityLedger(url, clock=Clock()) as old:
        old.ingest(sent)
    monkeypatch.undo()
    with IdentityLedger(url, clock=Clock(1_700_000_001_000)) as lg:
        assert not lg.diagnostics().keyed
        assert lg.rekey() == 3
        assert lg.ingest(sent).duplicates == 3
        assert lg.ingest([event("device-1", None)]).ingested == 1
        incremental = snapshot(lg)
        lg.rebuild()
        assert snapshot(lg) == incremental


def test_a_job_that_erased_nobody_is_never_listed_done(lg: IdentityLedger, clock: Clock) -> None:
    """An erasure audit reads `done` only for a job that erased someone: a job whose every amplitude
    ID was withdrawn is `withdrawn`, one whose people were forgotten meanwhile by another job `empty`."""
    history(lg)
    bob = lg.resolve(user_id=BOB["user_id"])
    withdrawn_day = dt.date.fromisoformat(lg.forget(user_ids=[BOB["user_id"]], requester="dpo")["day"])
    assert lg.withdraw_deletion(bob.amplitude_id, withdrawn_day)["status"] == "withdrawn"
    clock.now += DAY
    later = dt.date.fromisoformat(lg.forget(user_ids=[ALICE["user_id"]], requester="dpo")["day"])
    forget_alice(lg)  # another job forgets her first
    clock.now += DAY
    lg.run_deletions()
    statuses = {job["day"]: job["status"] for job in lg.deletions(withdrawn_day, later)}
    assert statuses == {withdrawn_day.isoformat(): "withdrawn", (later - dt.timedelta(days=1)).isoformat(): "done",
                        later.isoformat(): "empty"}
    assert lg.forget(user_ids=["nobody-known"], requester="dpo", ignore_invalid_id=True, now=True)["status"] == "empty"
