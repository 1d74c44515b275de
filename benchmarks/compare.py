"""The same-run comparison: the ledger against its baselines on the same events, repeats interleaved.

Every repeat runs each contender once on a fresh database, so drifting load on a
shared machine hits all of them alike; the report compares medians. The storage floor
(`benchmarks.floor`) replays the very transactions the repeat's ledger run committed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from benchmarks import ledger_runs
from benchmarks.baselines import raw_insert, raw_scan
from benchmarks.databases import Databases
from benchmarks.floor import Transaction, replay
from benchmarks.measure import Series
from benchmarks.naive import naive_ingest
from benchmarks.workload import Event, requests

REQUEST_SIZE = 1000


@dataclass(frozen=True)
class Plan:
    """How much of the workload each contender gets, and how often everything runs."""

    events: int  # the ledger at 1000/request, the raw baseline, rebuild and raw scan
    small_request_events: int  # the ledger at smaller request sizes (0: skip)
    naive_events: int  # the naive application (0: skip; SQLite only)
    repeats: int
    small_sizes: tuple[int, ...] = (10, 100)


def compare(databases: Databases, events: list[Event], plan: Plan) -> dict[str, Series]:
    events = events[: plan.events]
    small = events[: plan.small_request_events]
    naive = events[: plan.naive_events]
    series = {
        "ingest_1000": Series("ledger ingest, 1000 events/request", f"{len(events):,} events"),
        "raw_insert": Series("raw executemany, 1000 rows/transaction", f"{len(events):,} events"),
        "floor": Series("storage floor: the ledger's own write transactions replayed", f"{len(events):,} events"),
    }
    if small:
        for size in plan.small_sizes:
            series[f"ingest_{size}"] = Series(f"ledger ingest, {size} events/request", f"first {len(small):,} events")
    if naive:
        series["naive"] = Series("naive eventsourcing, 1 save()/call", f"first {len(naive):,} events")
    series["rebuild"] = Series("ledger rebuild, all projections", "log events/s")
    series["raw_scan"] = Series("raw SELECT + msgpack decode of the log", "log events/s")

    for repeat in range(1, plan.repeats + 1):
        def step(name: str, repeat: int = repeat) -> None:
            print(f"  {databases.name} repeat {repeat}/{plan.repeats}: {name}", file=sys.stderr, flush=True)

        step("ledger ingest")
        url = databases.ledger_url(f"ledger_{REQUEST_SIZE}_r{repeat}")
        writes: list[Transaction] = []
        series["ingest_1000"].add(ledger_runs.ingest(url, requests(events, REQUEST_SIZE), writes))
        step("storage floor")
        series["floor"].add(replay(databases.ledger_url(f"floor_r{repeat}"), writes, len(events)))
        del writes
        step("raw insert")
        series["raw_insert"].add(raw_insert(databases.raw_table(f"raw_r{repeat}"), requests(events, REQUEST_SIZE)))
        if small:
            for size in plan.small_sizes:
                step(f"ledger ingest {size}/request")
                small_url = databases.ledger_url(f"ledger_{size}_r{repeat}")
                series[f"ingest_{size}"].add(ledger_runs.ingest(small_url, requests(small, size)))
        if naive:
            step("naive")
            series["naive"].add(naive_ingest(databases.ledger_url(f"naive_r{repeat}"), naive))
        step("rebuild")
        series["rebuild"].add(ledger_runs.rebuild(url))
        step("raw scan")
        series["raw_scan"].add(raw_scan(databases.log_rows(url)))
    return series
