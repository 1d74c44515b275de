"""The second-writer trial of `benchmarks.faults` on tiny components: every retraction finishes, nothing is lost
(no timings asserted)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.second_writer import run_corrections


def test_a_tiny_correction_trial_finishes_and_loses_nothing(tmp_path: Path) -> None:
    result = run_corrections(trials=2, calls=200, scratch=tmp_path)
    assert (result["lost"], result["applied_twice"], result["partly"]) == (0, 0, 0)
    assert result["requests_acknowledged"] > 0
    assert result["seconds_median_under_load"] > 0
