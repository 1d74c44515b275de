"""The SDK-traffic harness runs every contender, judges each goal by its ratio, and reports it (no timings asserted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.databases import SQLiteDatabases
from benchmarks.report import markdown, targets
from benchmarks.sdk_traffic import lines, measure
from benchmarks.tests.test_benchmarks import _results
from benchmarks.workload import Workload


def test_a_tiny_run_measures_every_contender_and_each_goal(tmp_path: Path) -> None:
    events = list(Workload().events(300))
    found = measure(SQLiteDatabases(tmp_path), events, 1, tmp_path, log=lambda _: None)
    assert found["failed"] == {}
    assert set(found["rates"]) == {"bulk", "small", "serve", "serve_workers", "raw"}
    assert all(rate["median_per_s"] > 0 for rate in found["rates"].values())
    assert {"p50_ms", "p99_ms"} <= set(found["rates"]["small"]) and {"p50_ms", "p99_ms"} <= set(found["rates"]["serve"])
    rates = {name: rate["median_per_s"] for name, rate in found["rates"].items()}
    small = next(goal for goal in found["goals"] if goal["what"].startswith("10-event requests"))
    assert small["ratio"] == round(rates["small"] / rates["bulk"], 3) and small["met"] is (small["ratio"] >= 0.6)
    printed = "\n".join(lines("sqlite", found))
    assert "goal >= 0.4x" in printed and "p99" in printed
    results: dict[str, Any] = {**_results({"skipped": "-"}, {"sizes": [], "flags": [], "resolve": {}}),
                               "sdk": {"sqlite": found}}
    assert any(target.what.startswith("sqlite: 10-event requests") for target in targets(results))
    assert "SDK-shaped traffic" in markdown(results)
