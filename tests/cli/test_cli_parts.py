"""The command's helpers on their own: progress bar, tables, synthetic history, export shapes, resending."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from typing import Any

import pytest

from ledger.cli import synthetic
from ledger.cli.amplitude_export import event_from_export_row, format_time
from ledger.cli.progress import ProgressBar
from ledger.cli.render import table
from ledger.cli.sending import Sender
from ledger.cli.synthetic import EXAMPLE_USER_ID, generate
from ledger.domain.calls import BLOCKED_IDS
from ledger.domain.times import from_iso as parse_time
from ledger.errors import InvalidRequest
from ledger.ledger import IngestReport


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_silent_off_a_terminal() -> None:
    stream = io.StringIO()
    with ProgressBar("ingesting", "calls", 10, stream=stream) as bar:
        bar.update(5)
    assert stream.getvalue() == ""


def test_progress_bar_shows_count_rate_and_eta_on_a_terminal() -> None:
    stream = _Terminal()
    bar = ProgressBar("rebuilding", "events", 1000, stream=stream)
    bar.update(250)
    assert bar.line(2.0) == "rebuilding [######..................] 250/1,000 events   25%  125 events/s  ETA 6s"
    bar.close()
    assert "\r" in stream.getvalue() and stream.getvalue().endswith("\n")
    assert ProgressBar("reading", "lines", stream=stream).line(1.0) == "reading 0 lines  0 lines/s"


def test_table_aligns_numbers_right_and_text_left() -> None:
    assert table([("merges", "7"), ("identified users", "1,234")], ("what", "how many")).splitlines() == [
        "what              how many",
        "----------------  --------",
        "merges                   7",
        "identified users     1,234",
    ]


def test_synthetic_history_is_seeded_exact_and_varied() -> None:
    history = generate(5000, seed=3)
    requests = list(history.requests)
    assert history.calls == 5000 == sum(len(request.calls) for request in requests)
    assert list(generate(5000, seed=3).requests) == requests != list(generate(5000, seed=4).requests)
    events = [call for request in requests if not request.identify for call in request.calls]
    assert max(len(request.calls) for request in requests) <= 2000
    assert any(request.identify for request in requests)  # the CRM's Identify API sync
    assert any(event["event_type"] == "$identify" and event.get("user_properties") for event in events)
    repeated = Counter((event["device_id"], event["insert_id"]) for event in events)
    assert max(repeated.values()) > 1  # client retries
    assert {event.get("device_id") for event in events} & BLOCKED_IDS
    assert {event.get("user_id") for event in events} & BLOCKED_IDS
    assert any(len(event["device_id"]) < 5 for event in events)
    assert sum(event.get("user_id") == EXAMPLE_USER_ID for event in events) >= 5
    times = [event["time"] for event in events]
    assert sum(a > b for a, b in itertools.pairwise(times)) < len(times) // 50  # arrival order, retries aside


def test_a_large_history_streamed_in_windows_is_the_one_pass_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows keep memory flat; they must not change a single call or its order."""
    whole = list(generate(6000, seed=5).requests)
    monkeypatch.setattr(synthetic, "WINDOW_ARRIVALS", 500)
    windowed = generate(6000, seed=5)
    assert windowed.calls == 6000 and list(windowed.requests) == whole
    assert list(windowed.requests) == whole  # and again: each read streams afresh


def test_export_times_round_trip() -> None:
    assert parse_time("2024-03-04 09:00:00.250000") == 1709542800250
    assert parse_time("2024-03-04 09:00:00") == 1709542800000
    assert format_time(1709542800250) == "2024-03-04 09:00:00.250000"
    row = {"event_time": "2024-03-04 09:00:00.250000", "event_type": "x", "user_id": None, "device_id": "d-1",
           "uuid": "u-1", "amplitude_id": 5}
    expected = {"time": 1709542800250, "event_type": "x", "device_id": "d-1", "insert_id": "u-1"}
    assert event_from_export_row(row) == expected
    with pytest.raises(ValueError):
        event_from_export_row({"event_time": 12})


def _refusing(bad: set[str]) -> tuple[list[list[str]], Any]:
    """A ledger stand-in that refuses requests holding a bad device ID, naming their indices."""
    sent: list[list[str]] = []

    def submit(calls: list[dict[str, Any]]) -> IngestReport:
        sent.append([call["device_id"] for call in calls])
        indices = [index for index, call in enumerate(calls) if call["device_id"] in bad]
        if indices:
            raise InvalidRequest(400, {"code": 400, "error": "Invalid field values on some events",
                                       "events_with_invalid_fields": {"device_id": indices}})
        return IngestReport(ingested=len(calls), duplicates=0, position=len(calls), server_time=0)

    return sent, submit


def test_sender_drops_what_a_request_names_and_resends_the_rest() -> None:
    sent, submit = _refusing({"null"})
    sender = Sender()
    sender.send(submit, [(f"line {n}", {"device_id": device}) for n, device in enumerate(["aaaaa", "null", "bbbbb"])])
    assert sent == [["aaaaa", "null", "bbbbb"], ["aaaaa", "bbbbb"]]
    assert [str(problem) for problem in sender.tally.problems] == ["line 1: invalid device_id 'null'"]
    assert (sender.tally.requests, sender.tally.rejected_requests, sender.tally.ingested) == (2, 1, 2)


def test_strict_sender_keeps_only_the_calls_before_the_first_bad_one() -> None:
    sent, submit = _refusing({"null", "undefined"})
    sender = Sender(strict=True)
    sender.send(submit, [(str(n), {"device_id": d}) for n, d in enumerate(["aaaaa", "null", "bbbbb", "undefined"])])
    assert sent[-1] == ["aaaaa"] and sender.stopped
    assert [problem.where for problem in sender.tally.problems] == ["1"]
