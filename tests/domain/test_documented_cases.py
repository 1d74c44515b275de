"""The five documented cases of docs/rules.md, row by row, checked through resolve, timeline, merges and audit."""

from __future__ import annotations

import pytest

from ledger import IdentityLedger, Merge, Stats
from tests.helpers import event


def send(lg: IdentityLedger, rows: list[tuple[str, str | None]]) -> list[int]:
    """Send each row as its own request; return the amplitude ID each event was given."""
    given = []
    for device_id, user_id in rows:
        report = lg.ingest([event(f"device-{device_id}", user_id and f"user-{user_id}")])
        assert report.ingested == 1
        given.append(lg.events(after=report.position - 1_000_000)[-1].original_amplitude_id)
    return given


def test_case_1_no_user_id(lg: IdentityLedger) -> None:
    assert send(lg, [(d, None) for d in "ABBCAC"]) == [1, 2, 2, 3, 1, 3]
    assert lg.stats().users == 3


def test_case_2_user_id_after_anonymous_events(lg: IdentityLedger) -> None:
    send(lg, [(d, None) for d in "ABBCAC"])
    assert send(lg, [("G", None), ("G", None), ("G", "John")]) == [4, 4, 4]
    john = lg.resolve(user_id="user-John")
    assert john is not None and john.amplitude_id == 4
    assert [e.event_type for e in lg.timeline(4)] == ["view"] * 3
    assert lg.merges() == []


def test_case_3_one_user_on_two_devices(lg: IdentityLedger) -> None:
    send(lg, [(d, None) for d in "ABBCAC"] + [("G", None), ("G", None), ("G", "John")])
    assert send(lg, [("K", "Zack"), ("L", "Zack")]) == [5, 5]
    zack = lg.resolve(user_id="user-Zack")
    assert zack is not None and zack.device_ids == ["device-K", "device-L"]
    assert lg.resolve(device_id="device-L") == zack


def test_case_4_two_users_on_one_device(lg: IdentityLedger) -> None:
    send(lg, [(d, None) for d in "ABBCAC"] + [("G", None), ("G", None), ("G", "John"), ("K", "Zack"), ("L", "Zack")])
    rows = [("R", "Jane"), ("R", None), ("R", "Mary"), ("R", None), ("R", None)]
    assert send(lg, rows) == [6, 6, 7, 7, 7]
    assert lg.merges() == []
    assert len(lg.timeline(6)) == 2 and len(lg.timeline(7)) == 3
    kinds = [(entry.kind, entry.amplitude_id) for entry in lg.audit(device_id="device-R")]
    assert kinds == [("created", 6), ("linked", 6), ("bound", 6), ("created", 7), ("linked", 7), ("bound", 7),
                     ("pointer_moved", 7)]


@pytest.mark.parametrize("prefix", [[], [("P", None)]])
def test_case_5_merge(lg: IdentityLedger, prefix: list[tuple[str, str | None]]) -> None:
    offset = len(prefix)
    given = send(lg, [*prefix, ("Y", "David"), ("Z", None), ("Z", "David"), ("Z", None)])[offset:]
    assert given == [1 + offset, 2 + offset, 1 + offset, 1 + offset]
    live, merged = 1 + offset, 2 + offset
    [merge] = lg.merges()
    assert (merge.amplitude_id, merge.merged_amplitude_id) == (merged, live)
    assert merge.merge_event_time > 0 and merge.merge_server_time > 0
    david = lg.resolve(user_id="user-David")
    assert david is not None
    assert (david.amplitude_id, david.merged_amplitude_ids) == (live, [merged])
    timeline = lg.timeline(merged)
    assert timeline == lg.timeline(live)
    assert [(e.original_amplitude_id, e.amplitude_id) for e in timeline] == [
        (live, live), (merged, live), (live, live), (live, live)
    ]
    assert lg.stats().users == 1 + offset and lg.stats().merges == 1
    merged_entries = [entry for entry in lg.audit(user_id="user-David") if entry.kind == "merged"]
    assert [(e.amplitude_id, e.merged_amplitude_id, e.device_id) for e in merged_entries] == [
        (merged, live, "device-Z")
    ]


def test_all_five_cases_in_one_ledger(lg: IdentityLedger) -> None:
    rows = (
        [(d, None) for d in "ABBCAC"]
        + [("G", None), ("G", None), ("G", "John")]
        + [("K", "Zack"), ("L", "Zack")]
        + [("R", "Jane"), ("R", None), ("R", "Mary"), ("R", None), ("R", None)]
        + [("Y", "David"), ("Z", None), ("Z", "David"), ("Z", None)]
    )
    assert send(lg, rows) == [1, 2, 2, 3, 1, 3, 4, 4, 4, 5, 5, 6, 6, 7, 7, 7, 8, 9, 8, 8]
    [merging] = [e for e in lg.events() if (e.device_id, e.user_id) == ("device-Z", "user-David")]
    assert lg.merges() == [Merge(9, 8, merging.time, merging.server_time)]  # stamped by the merging event
    assert lg.stats() == Stats(events=20, users=8, identified_users=5, devices=9, merges=1)
