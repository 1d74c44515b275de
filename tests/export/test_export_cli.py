"""`ledger export` and `ledger ingest`: the round trip through files, incremental loads, the state file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import IdentityLedger
from tests.cli_helpers import assert_one_line_error, ledger
from tests.export.people import corrections, people
from tests.helpers import Clock

DEVICES = ["kiosk-1", "phone-22", "laptop-3", "tablet-4"]
USERS = ["maria-1", "frank-1", "staff-login", "olga-77"]


def history(lg: IdentityLedger) -> None:
    """Identify calls, a merge, operations, a correction, a deletion, and calls after each."""
    lg.ingest([{"device_id": "kiosk-1", "event_type": "view", "user_properties": {"plan": "free"}}])
    lg.identify([{"device_id": "kiosk-1", "user_id": "maria-1", "user_properties": {"$add": {"visits": 1}}}])
    lg.ingest([{"device_id": "laptop-3", "event_type": "view", "insert_id": "i-1"},
               {"device_id": "laptop-3", "user_id": "maria-1", "event_type": "login"},  # merges laptop's person
               {"device_id": "kiosk-1", "user_id": "frank-1", "event_type": "view"},
               {"device_id": "phone-22", "user_id": "frank-1", "event_type": "view"},
               {"device_id": "tablet-4", "user_id": "staff-login", "event_type": "view"},
               {"device_id": "tablet-4", "user_id": "olga-77", "event_type": "view"}])
    lg.retract_user_id("staff-login", reason="typed by staff")
    lg.forget(user_ids=["frank-1"], requester="dpo", now=True)
    lg.ingest([{"device_id": "kiosk-1", "event_type": "after"}, {"device_id": "tablet-4", "event_type": "after"}])


def test_export_then_ingest_gives_the_same_people(capsys: pytest.CaptureFixture[str], open_ledger: Callable[..., IdentityLedger],
                                                  new_url: Callable[[], str], tmp_path: Path) -> None:
    source = open_ledger()
    history(source)
    out = tmp_path / "history.jsonl"
    assert ledger(capsys, "export", "--db", source.url, "--out", str(out)).code == 0
    kinds = [json.loads(line)["record"] for line in out.read_text().splitlines()]
    assert {"call", "correction", "forgotten"} <= set(kinds)
    copy_url = new_url()
    result = ledger(capsys, "ingest", "--db", copy_url, str(out), "--json")
    assert result.code == 0, result
    assert result.json()["calls"] == kinds.count("call")
    with IdentityLedger(copy_url, clock=Clock()) as copy:
        assert people(copy, DEVICES, USERS) == people(source, DEVICES, USERS)
        assert corrections(copy) == corrections(source)
        assert copy.merges() and len(copy.merges()) == len(source.merges())


def test_since_and_as_of_split_the_history(capsys: pytest.CaptureFixture[str],
                                           open_ledger: Callable[..., IdentityLedger]) -> None:
    source = open_ledger()
    history(source)
    whole = ledger(capsys, "export", "--db", source.url).out
    for middle in range(0, source.position + 1, 3):
        before = ledger(capsys, "export", "--db", source.url, "--as-of", str(middle)).out
        after = ledger(capsys, "export", "--db", source.url, "--since", str(middle)).out
        assert before + after == whole
        assert all(json.loads(line)["position"] <= middle for line in before.splitlines())


def test_a_state_file_makes_nightly_loads_incremental(capsys: pytest.CaptureFixture[str],
                                                      open_ledger: Callable[..., IdentityLedger], tmp_path: Path) -> None:
    source = open_ledger()
    state = tmp_path / "export.state"
    source.ingest([{"device_id": "kiosk-1", "event_type": "first"}])
    first = ledger(capsys, "export", "--db", source.url, "--state", str(state)).out
    assert state.read_text().strip() == str(source.position)
    source.ingest([{"device_id": "kiosk-1", "event_type": "second"}])
    second = ledger(capsys, "export", "--db", source.url, "--state", str(state)).out
    assert [json.loads(line)["event_type"] for line in first.splitlines() + second.splitlines()] == ["first", "second"]
    assert ledger(capsys, "export", "--db", source.url, "--state", str(state)).out == ""
    state.write_text("yesterday\n")
    assert_one_line_error(ledger(capsys, "export", "--db", source.url, "--state", str(state)), 2, "position")


def test_a_crashed_export_never_advances_the_state(open_ledger: Callable[..., IdentityLedger], tmp_path: Path) -> None:
    """The export process dies (SIGKILL) while writing: the state file still holds the old position."""
    source = open_ledger()
    source.ingest([{"device_id": f"device-{n:05}", "event_type": "view"} for n in range(2000)])
    state, out = tmp_path / "export.state", tmp_path / "out.jsonl"
    state.write_text("0\n")
    crash = ("import os, sys, signal; from ledger.cli import exporting\n"
             "write = exporting._json.encode\n"
             "def dying(value, count=[0]):\n"
             "    count[0] += 1\n"
             "    if count[0] == 1500: os.kill(os.getpid(), signal.SIGKILL)\n"
             "    return write(value)\n"
             "exporting._json = type('E', (), {'encode': staticmethod(dying)})()\n"
             "from ledger.cli.commands import main\n"
             f"sys.exit(main(['export', '--db', {source.url!r}, '--state', {str(state)!r}, '--out', {str(out)!r}]))\n")
    finished = subprocess.run([sys.executable, "-c", crash], capture_output=True, timeout=120)
    assert finished.returncode == -9
    assert state.read_text() == "0\n"
    assert not out.exists()


def test_an_old_export_file_keeps_loading(capsys: pytest.CaptureFixture[str], new_url: Callable[[], str],
                                          tmp_path: Path) -> None:
    """Release 0.x's export rows (one tracked event each, HTTP V2 names kept) load as events."""
    old = {"amplitude_id": 1, "original_amplitude_id": 1, "user_id": "maria-1", "device_id": "kiosk-1",
           "insert_id": "i-1", "event_type": "view", "time": 1700000000000, "event_time": "2023-11-14 22:13:20.000000",
           "server_time": 1700000000001, "server_received_time": "2023-11-14 22:13:20.001000", "position": 5,
           "event_properties": {"page": "/"}, "user_properties": {"plan": "free"}}
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(old) + "\n")
    url = new_url()
    assert ledger(capsys, "ingest", "--db", url, str(path)).code == 0
    with IdentityLedger(url) as lg:
        person = lg.resolve(user_id="maria-1")
        assert person is not None and person.user_properties == {"plan": "free"}
        assert [event.event_type for event in lg.timeline(person.amplitude_id)] == ["view"]


def test_a_bad_history_line_stops_the_replay_with_where(capsys: pytest.CaptureFixture[str],
                                                        open_ledger: Callable[..., IdentityLedger],
                                                        new_url: Callable[[], str], tmp_path: Path) -> None:
    source = open_ledger()
    source.ingest([{"device_id": "kiosk-1", "event_type": "view"}])
    lines = ledger(capsys, "export", "--db", source.url).out.splitlines()
    future = {**json.loads(lines[0]), "format": "ledger-history/9"}
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(future), "{not json"]) + "\n")
    assert_one_line_error(ledger(capsys, "ingest", "--db", new_url(), str(path)), 2, "h.jsonl:2", "upgrade")


HOSTILE = [
    {"record": "call", "position": 1, "server_upload_time": 2**70, "device_id": "kiosk-1", "event_type": "view"},
    {"record": "call", "position": -1, "server_upload_time": 1, "device_id": "kiosk-1", "event_type": "view"},
    {"record": "call", "position": 1, "server_upload_time": "1", "device_id": "kiosk-1", "event_type": "view"},
    {"record": "call", "position": 1, "server_upload_time": 1, "device_id": "kiosk\x00-1", "event_type": "view"},
    {"record": "call", "position": 1, "server_upload_time": 1, "device_id": "kiosk-1", "event_type": "view",
     "event_properties": {"n": 2**64}},
    {"record": "call", "position": 1, "server_upload_time": 1, "device_id": "kiosk-1", "event_type": "view",
     "event_properties": {"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}},
    {"record": "correction", "position": 1, "server_upload_time": 1, "user_id": ["maria-1"], "reason": "r",
     "requester": "q"},
    {"record": "correction", "position": 1, "server_upload_time": 1, "user_id": "maria\x00", "reason": "r",
     "requester": "q"},
    {"record": "forgotten", "position": 1, "server_upload_time": 1, "people": 1, "device_ids": "kiosk-1"},
    {"record": "forgotten", "position": 1, "server_upload_time": 1, "people": 1, "device_ids": [7]},
    {"record": "mapped", "position": 1, "server_upload_time": 1},
    {"record": "group_identify", "position": 1, "server_upload_time": 1, "group_type": 7, "group_value": "acme",
     "group_properties": {}},
    {"record": "group_identify", "position": 1, "server_upload_time": 1, "group_type": "org", "group_value": "ac\x00me",
     "group_properties": {"$set": {"tier": "pro"}}},
    {"record": "group_identify", "position": 1, "server_upload_time": 1, "group_type": "org", "group_value": "acme",
     "group_properties": [{"$set": {"tier": "pro"}}]},
    {"record": "group_identify", "position": 1, "server_upload_time": 1, "group_type": "org", "group_value": "acme",
     "group_properties": {"$add": {"seats": 2**64}}},
    {"record": "group_identify", "position": 1, "server_upload_time": 1, "group_type": "org", "group_value": "acme",
     "group_properties": {"$merge": {"tier": "pro"}}},
    {"record": "mapping", "position": 1, "server_upload_time": 1, "user_id": "frank-1", "global_user_id": 7,
     "unmap": False, "requester": "ops"},
    {"record": "mapping", "position": 1, "server_upload_time": 1, "user_id": "frank\x00", "global_user_id": "maria-1",
     "unmap": False, "requester": "ops"},
    {"record": "mapping", "position": 1, "server_upload_time": 1, "user_id": "frank-1", "global_user_id": "maria-1",
     "unmap": "yes", "requester": "ops"},
    {"record": "mapping", "position": 1, "server_upload_time": 1, "user_id": "frank-1", "global_user_id": "maria-1",
     "unmap": False, "requester": ""},
    {"record": "mapping", "position": 1, "server_upload_time": 1, "user_id": "frank-1", "global_user_id": "frank-1",
     "unmap": False, "requester": "ops"},
    {"record": "mapping", "position": 1, "server_upload_time": 2**70, "user_id": "frank-1",
     "global_user_id": "maria-1", "unmap": False, "requester": "ops"},
]


@pytest.mark.parametrize("record", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_history_records_are_one_line_errors_storing_nothing(
        capsys: pytest.CaptureFixture[str], new_url: Callable[[], str], tmp_path: Path, record: dict) -> None:
    path = tmp_path / "hostile.jsonl"
    path.write_text(json.dumps({"format": "ledger-history/1", **record}) + "\n")
    url = new_url()
    assert_one_line_error(ledger(capsys, "ingest", "--db", url, str(path)), 2)
    with IdentityLedger(url) as lg:
        assert lg.position == 0
