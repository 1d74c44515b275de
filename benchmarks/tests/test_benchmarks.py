"""The harness itself: the workload is deterministic and shaped as promised, and a tiny run reports.

No timings are asserted: figures depend on the machine. Run with `pytest benchmarks/tests`.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks import ledger_runs
from benchmarks.compare import Plan, compare
from benchmarks.databases import SQLiteDatabases
from benchmarks.floor import PARTS, Transaction, replay, rules_minimum
from benchmarks.report import markdown, targets
from benchmarks.scaling import rate_drops
from benchmarks.suite import QUICK, notes
from benchmarks.versions import summarise
from benchmarks.workload import Workload, requests


def test_the_same_seed_gives_the_same_events() -> None:
    assert list(Workload(7).events(500)) == list(Workload(7).events(500))
    assert list(Workload(7).events(500)) != list(Workload(8).events(500))


def test_the_mix_is_mostly_anonymous_traffic_with_about_one_percent_duplicates() -> None:
    events = list(Workload().events(20_000))
    anonymous_tracks = sum(1 for e in events if "user_id" not in e and e["event_type"] != "$identify")
    keys = Counter((e["device_id"], e["insert_id"]) for e in events)
    duplicates = sum(count - 1 for count in keys.values())
    assert 0.65 < anonymous_tracks / len(events) < 0.85
    assert 0.005 < duplicates / len(events) < 0.015
    assert any(e["event_type"] == "$identify" for e in events)


def test_requests_cut_the_stream_without_losing_events() -> None:
    batches = list(requests(range(2500), 1000))
    assert [len(batch) for batch in batches] == [1000, 1000, 500]


def test_an_ingest_drop_beyond_the_raw_limit_s_own_is_flagged() -> None:
    rows = [{"events": 100, "ingest_per_s": 1000.0, "raw_insert_per_s": 1000.0, "rebuild_per_s": 1000.0},
            {"events": 1000, "ingest_per_s": 600.0, "raw_insert_per_s": 800.0, "rebuild_per_s": 900.0}]
    flags = rate_drops(rows)
    assert len(flags) == 1 and flags[0].startswith("ingest rate falls 40%")
    rows[1]["raw_insert_per_s"] = 500.0  # the limit itself falls more: the ledger is not to blame
    assert rate_drops(rows) == []


def test_versions_are_compared_by_the_ratio_of_medians() -> None:
    runs = {"ingest_10x4": {"now": [{"rate": 4.0}, {"rate": 6.0}, {"rate": 5.0}], "previous": [{"rate": 2.5}]},
            "timeline": {"now": [{"page_p99_us": 10.0, "count_p99_us": 1.0}],
                         "previous": [{"page_p99_us": 20.0, "count_p99_us": 2.0}]}}
    summary = summarise(runs, ["now", "previous"])
    assert summary["ingest_10x4"]["ratio"] == 2.0 and summary["timeline"]["ratio"] == 0.5
    results = {**_results({}, {"sizes": [], "flags": [], "resolve": {}}),
               "versions": {"sqlite": {"versions": ["now", "previous"], "plan": {}, "runs": runs, "summary": summary}}}
    found = {target.what: target for target in targets(results)}
    assert found["sqlite: ingest 10/request, 4 threads, vs previous code"].met is True
    assert found["sqlite: ingest 100/request, 4 threads, vs previous code"].met is None
    assert found["sqlite: whole-person timeline page p99 (latest 100), previous/now"].met is True
    assert "ingest_10x4" in markdown(results)


def _results(sqlite: dict[str, Any], scaling: dict[str, Any]) -> dict[str, Any]:
    machine = {"cpu": "cpu", "cores": 1, "memory_gb": 1, "platform": "p", "python": "py", "sqlite": "3",
               "packages": {}, "commit": "abc", "uncommitted_changes": False, "load_average": [0, 0, 0]}
    return {"mode": "test", "command": "pytest", "started": "now", "duration_s": 1.0, "seed": 1, "machine": machine,
            "sqlite": sqlite, "http": {"skipped": "no server"}, "postgres": {"skipped": "no url"},
            "scaling": scaling, "notes": notes(QUICK)}


def test_a_tiny_comparison_runs_every_contender_and_reports(tmp_path: Path) -> None:
    events = list(Workload().events(300))
    series = compare(SQLiteDatabases(tmp_path), events, Plan(300, 100, 50, repeats=1))
    section = {key: value.to_json() for key, value in series.items()}
    assert set(section) == {"ingest_1000", "raw_insert", "floor", "ingest_10", "ingest_100", "naive", "rebuild",
                            "raw_scan"}
    assert section["raw_scan"]["items"] == section["ingest_1000"]["log_events"]
    results = _results(section, {"sizes": [], "flags": [], "resolve": {}})
    assert {target.met for target in targets(results)} <= {True, False, None}
    assert "ledger/raw ingest" in markdown(results)
    assert "storage floor/raw" in markdown(results)


def test_the_storage_floor_replays_exactly_what_the_ledger_wrote(tmp_path: Path) -> None:
    databases = SQLiteDatabases(tmp_path)
    ingested, replayed = databases.ledger_url("ledger"), databases.ledger_url("floor")
    writes: list[Transaction] = []
    run = ledger_runs.ingest(ingested, requests(Workload().events(500), 100), writes)
    assert len(writes) == 5  # one transaction per request
    replay(replayed, writes, run.items)

    def content(url: str) -> dict[str, list[Any]]:
        connection = sqlite3.connect(make_url(url).database or "")
        try:
            return {table: connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                    for table in ("stored_events", "ledger_receipts", "ledger_devices", "ledger_identities",
                                  "ledger_audit")}
        finally:
            connection.close()

    found = content(replayed)
    assert len(found["stored_events"]) == run.extra["log_events"] and found["ledger_receipts"]
    assert found == content(ingested)

    parted = databases.ledger_url("parted")
    replay(parted, writes, run.items, PARTS["insert-ID receipts"] | PARTS["the log: tracked and identify events"])
    left = content(parted)
    assert left["ledger_receipts"] == [] and left["ledger_audit"] == found["ledger_audit"]
    assert {row[2] for row in left["stored_events"]} == {row[2] for row in found["stored_events"]} - {
        "Timeline.Tracked", "Timeline.Identified"}


def test_concurrent_clients_send_every_request_and_their_commits_are_recorded(tmp_path: Path) -> None:
    databases = SQLiteDatabases(tmp_path)
    writes: list[Transaction] = []
    run = ledger_runs.ingest_concurrently(databases.ledger_url("ledger"), requests(Workload().events(400), 10), 4,
                                          writes)
    assert run.items == 400
    assert 1 <= len(writes) <= 40
    stored = sum(len(args[0]) for calls in writes for name, args in calls if name == "insert_events")
    assert stored >= 400 - 10  # every event but the workload's few duplicates, plus identity facts


def test_a_failed_size_is_reported_not_judged() -> None:
    sizes = [{"events": 10, "ingest_per_s": 5.0, "ingest_peak_rss_mb": 50.0, "log_events": 15,
              "rebuild_per_s": 9.0, "rebuild_peak_rss_mb": 60.0},
             {"events": 100, "ingest_per_s": 5.0, "ingest_peak_rss_mb": 70.0, "failed": "replay failed: boom"}]
    results = _results({}, {"sizes": sizes, "flags": rate_drops(sizes), "resolve": {}})
    found = {target.what: target for target in targets(results)}
    assert found["peak RSS, ingest and rebuild at 100 events"].met is None
    assert found["ingest rate drop between the two largest sizes"].met is None
    assert "replay failed: boom" in markdown(results)


def test_the_rules_minimum_times_validation_and_duplicate_keys_of_every_event() -> None:
    events = list(Workload().events(300))
    minimum = rules_minimum(events, 100)
    assert set(minimum) == {"validation", "duplicate key"}
    assert all(run.items == 300 and run.seconds > 0 for run in minimum.values())
