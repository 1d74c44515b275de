"""`python -m benchmarks.time_travel` on tiny logs: it builds, measures and reports every row (no timings asserted)."""

from __future__ import annotations

import pytest

from benchmarks.time_travel import main


def test_a_tiny_run_reports_each_measure(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_BENCH_PREVIOUS", raising=False)
    main(["--events", "300", "--samples", "5", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "ingest against the previous code skipped" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| measure")]
    assert [row.split(" | ")[0].strip("| ") for row in rows] == [
        "as_of(p) open + one resolve", "resolve in a past view / live",
        "its SQL floor: a past resolve's statements, replayed bare / live", "read side on disk",
        "rebuild / raw scan of the facts", "its SQL floor: the scan + the rebuild's statements, replayed bare"]
    assert all(row.rstrip(" |").split(" | ")[-1][0].isdigit() for row in rows)  # each ends with its ratio
