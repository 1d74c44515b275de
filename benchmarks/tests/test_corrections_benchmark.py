"""`python -m benchmarks.corrections` on a tiny history: it builds, retracts, rebuilds and reports (no timings asserted)."""

from __future__ import annotations

import pytest

from benchmarks.corrections import BAD_USER_ID, main


def test_a_tiny_run_reports_the_retraction_and_the_rebuild(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--calls", "5000", "--runs", "1"])
    out = capsys.readouterr().out
    assert f"calls carrying {BAD_USER_ID!r}" in out
    [row] = [line for line in out.splitlines() if line.startswith("| 5,000 |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert int(cells[2].replace(",", "")) > 0  # some calls carried the bad user ID
    assert int(cells[3].replace(",", "")) >= int(cells[2].replace(",", ""))  # at least those were re-resolved
    assert cells[-1].endswith("x")
