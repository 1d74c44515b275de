"""The explorer benchmark's ledger: the measured person's events are all there, spread through the workload."""

from __future__ import annotations

from pathlib import Path

from benchmarks.explorer import DEVICES, REQUEST, USER_ID, build, stream
from ledger import IdentityLedger


def test_the_person_has_every_event_spread_over_the_stream_and_devices() -> None:
    batches = list(stream(20_000, 100))
    assert all(len(batch) <= REQUEST for batch in batches)
    calls = [call for batch in batches for call in batch]
    mine = [(number, call) for number, call in enumerate(calls) if call.get("user_id") == USER_ID]
    assert len(mine) == 100 and len({call["insert_id"] for _, call in mine}) == 100
    assert {call["device_id"] for _, call in mine} == set(DEVICES)
    assert mine[0][0] < len(calls) // 50 and mine[-1][0] > len(calls) * 9 // 10


def test_a_built_ledger_opens_with_its_key(tmp_path: Path) -> None:
    """The build writes a partial file and renames it: its key file must move with it, or the ledger is unreadable."""
    path = tmp_path / "explorer.db"
    build(path, total=200, person_events=20)
    assert not list(tmp_path.glob("*.partial*"))
    with IdentityLedger(f"sqlite:///{path}") as ledger:
        person = ledger.resolve(user_id=USER_ID)
        assert person is not None and ledger.event_count(person.amplitude_id) == 20
