"""The lean event path: what is stored per call, what loading costs, and the stream marker.

No timings: these count rows written and events decoded, which is what the speed rests on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from ledger import IdentityLedger
from ledger.store import write_reads
from tests.helpers import event


def count_decoded(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts every stored event the ledger decodes into an event object (that is how aggregates load)."""
    decoded = {"events": 0}
    original = write_reads.decode_event

    def counting(*args: Any) -> Any:
        decoded["events"] += 1
        return original(*args)

    monkeypatch.setattr(write_reads, "decode_event", counting)
    return decoded


def test_loading_a_hot_device_costs_nothing_per_event_it_sent(new_url: Callable[[], str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    url = new_url()
    with IdentityLedger(url) as lg:
        for _ in range(6):
            lg.ingest([event("device-hot") for _ in range(100)] + [event("device-hot", "user-hot")])
        lg.identify([{"device_id": "device-hot", "user_properties": {"$add": {"visits": 1}}} for _ in range(50)])
    decoded = count_decoded(monkeypatch)
    with IdentityLedger(url) as again:  # a restart: nothing cached
        report = again.ingest([event("device-hot")])
        assert report.ingested == 1 and again.event_count(again.resolve(device_id="device-hot").amplitude_id) == 607
    # The device (2 events), its identity (3 + 50 property updates), the user and the allocator: no tracked event.
    assert decoded["events"] < 60


def test_a_tracked_event_is_one_row_and_a_merge_moves_none(lg: IdentityLedger) -> None:
    lg.ingest([event("device-Y", "user-David")])
    anonymous = [event("device-Z") for _ in range(50)]
    before = lg.position
    lg.ingest(anonymous)
    assert lg.position - before == 50 + 3  # 50 tracked events + the new device, its identity, the ID reserved
    before = lg.position
    lg.ingest([event("device-Z", "user-David")])
    david = lg.resolve(user_id="user-David")
    assert david is not None and len(david.merged_amplitude_ids) == 1
    # The merge: Merged + Absorbed + DeviceLinked + PointerMoved + the tracked event; the 50 events stay put.
    assert lg.position - before == 5
    assert lg.event_count(david.amplitude_id) == 52
    assert {e.original_amplitude_id for e in lg.timeline(david.amplitude_id)} == {david.amplitude_id,
                                                                                  *david.merged_amplitude_ids}


def test_a_duplicate_from_before_an_upgrade_is_still_recognised(lg: IdentityLedger) -> None:
    lg.ingest([event("device-A", insert_id="same")])
    assert lg.ingest([event("device-A", insert_id="same")]).duplicates == 1
    assert lg.ingest([event("device-B", insert_id="same")]).duplicates == 0  # the key is (device ID, insert_id)


def test_the_stream_marker_is_stored_with_the_request_and_a_redelivery_stores_nothing(lg: IdentityLedger) -> None:
    assert lg.applied("orders") is None
    first = lg.ingest([event("device-A")], applied=("orders", 7))
    assert lg.applied("orders") == 7
    again = lg.ingest([event("device-A"), event("device-B")], applied=("orders", 7))
    assert (again.ingested, again.duplicates, again.position) == (0, 2, first.position)
    lg.identify([{"device_id": "device-A", "user_properties": {"$set": {"a": 1}}}], applied=("orders", 8))
    assert lg.applied("orders") == 8 and lg.applied("other") is None
    assert lg.stats().events == 1


def test_receipts_written_before_they_were_clustered_move_into_the_new_shape_on_open(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/receipts.db"
    with IdentityLedger(url) as lg:
        lg.ingest([event("device-A", insert_id="kept"), event("device-B", insert_id="also-kept")])
    connection = sqlite3.connect(tmp_path / "receipts.db")
    with connection:  # the receipts table as the lean path first wrote it: a rowid table
        connection.execute("ALTER TABLE ledger_receipts RENAME TO old_receipts")
        connection.execute("CREATE TABLE ledger_receipts (key BLOB PRIMARY KEY, server_time BIGINT NOT NULL)")
        connection.execute("INSERT INTO ledger_receipts SELECT * FROM old_receipts")
        connection.execute("DROP TABLE old_receipts")
    connection.close()
    with IdentityLedger(url) as lg:
        assert lg.ingest([event("device-A", insert_id="kept"), event("device-B", insert_id="also-kept"),
                          event("device-A", insert_id="new")]).duplicates == 2
    connection = sqlite3.connect(tmp_path / "receipts.db")
    [(sql,)] = connection.execute("SELECT sql FROM sqlite_master WHERE name = 'ledger_receipts'").fetchall()
    assert "WITHOUT ROWID" in sql and connection.execute("SELECT COUNT(*) FROM ledger_receipts").fetchone()[0] == 3
    connection.close()
