"""The whole suite in one call: which measurements run, how big, and in what order."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.compare import Plan, compare
from benchmarks.databases import Databases, PostgresDatabases, SQLiteDatabases
from benchmarks.http_api import measure_http
from benchmarks.machine import code_fingerprint, describe
from benchmarks.scaling import scale
from benchmarks.sdk_traffic import measure as measure_sdk_traffic
from benchmarks.versions import VersionPlan, compare_versions
from benchmarks.workload import Workload

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mode:
    name: str
    sqlite: Plan
    postgres: Plan
    scaling_sizes: tuple[int, ...]
    resolve_samples: int
    http_events: int
    versions: VersionPlan
    sdk_events: int  # benchmarks.sdk_traffic: events per contender per repeat


QUICK = Mode("quick", sqlite=Plan(10_000, 3_000, 2_000, repeats=3), postgres=Plan(5_000, 0, 0, repeats=3),
             scaling_sizes=(10_000, 30_000), resolve_samples=2_000, http_events=3_000,
             versions=VersionPlan(small_events=2_000, steady_events=10_000, timeline_samples=200, repeats=2),
             sdk_events=3_000)
# Half the full sizes, the largest scaling size 300k: for a loaded machine with a deadline.
MEDIUM = Mode("medium", sqlite=Plan(50_000, 10_000, 5_000, repeats=3), postgres=Plan(50_000, 0, 0, repeats=3),
              scaling_sizes=(10_000, 100_000, 300_000), resolve_samples=10_000, http_events=10_000,
              versions=VersionPlan(small_events=10_000, steady_events=50_000, timeline_samples=500, repeats=3),
              sdk_events=10_000)
# The naive application's rate does not depend on the ledger's size (events per device stay
# alike in every slice of the workload), so a slice of it is enough; likewise small requests.
FULL = Mode("full", sqlite=Plan(100_000, 20_000, 10_000, repeats=3), postgres=Plan(100_000, 0, 0, repeats=3),
            scaling_sizes=(10_000, 100_000, 1_000_000), resolve_samples=10_000, http_events=30_000,
            versions=VersionPlan(small_events=20_000, steady_events=100_000, timeline_samples=1_000, repeats=3),
            sdk_events=30_000)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _optional(what: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a measurement that depends on something outside this repo (a server, PostgreSQL)."""
    try:
        return measure()
    except Exception as error:
        _log(f"  {what} failed: {error!r}")
        return {"failed": f"{what} failed: {error!r}"}


def _comparison(databases: Databases, events: list[Any], plan: Plan) -> dict[str, Any]:
    try:
        return {key: series.to_json() for key, series in compare(databases, events, plan).items()}
    finally:
        databases.close()


def _versions(databases: Databases, previous: Path | None, plan: VersionPlan) -> dict[str, Any]:
    if previous is None:
        return {"skipped": "set LEDGER_BENCH_PREVIOUS to a checkout of the previous code"}
    try:
        return compare_versions(databases, {"now": REPO, "previous": previous}, plan)
    except Exception as error:
        _log(f"  versions failed: {error!r}")
        return {"failed": f"versions failed: {error!r}"}


def _sdk_on_postgres(postgres_url: str, events: list[Any], repeats: int) -> dict[str, Any]:
    postgres = PostgresDatabases(postgres_url)
    try:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-sdk-") as scratch:
            return measure_sdk_traffic(postgres, events, repeats, Path(scratch), postgres_url, log=_log)
    finally:
        postgres.close()


def run(mode: Mode, seed: int, postgres_url: str | None, command: str,
        previous: Path | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {
        "mode": mode.name,
        "command": command,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": seed,
        "machine": describe(),
    }
    _log(f"generating the workload (seed {seed})")
    events = list(Workload(seed).events(max(mode.sqlite.events, mode.postgres.events, mode.http_events)))
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        sqlite = SQLiteDatabases(scratch)
        _log("SQLite: ledger against raw and naive baselines")
        results["sqlite"] = _comparison(sqlite, events, mode.sqlite)
        _log("SQLite: against the previous code")
        results["versions"] = {"sqlite": _versions(sqlite, previous, mode.versions)}
        _log("HTTP end-to-end")
        results["http"] = _optional("HTTP", lambda: measure_http(
            sqlite.ledger_url("http"), events[: mode.http_events], scratch / "server.log"))
        _log("SDK-shaped traffic (SQLite)")
        results["sdk"] = {"sqlite": _optional("SDK traffic", lambda: measure_sdk_traffic(
            SQLiteDatabases(scratch), events[: mode.sdk_events], mode.sqlite.repeats, scratch, log=_log))}
        _log("scaling")
        results["scaling"] = scale(sqlite, list(mode.scaling_sizes), seed, scratch, mode.resolve_samples)
        sqlite.close()
    if postgres_url:
        _log("PostgreSQL: ledger against raw baseline")
        results["postgres"] = _optional("PostgreSQL", lambda: _comparison(
            PostgresDatabases(postgres_url), events, mode.postgres))
        _log("SDK-shaped traffic (PostgreSQL)")
        results["sdk"]["postgres"] = _optional("SDK traffic", lambda: _sdk_on_postgres(
            postgres_url, events[: mode.sdk_events], mode.postgres.repeats))
        _log("PostgreSQL: against the previous code")
        postgres = PostgresDatabases(postgres_url)
        try:
            results["versions"]["postgres"] = _versions(postgres, previous, mode.versions)
        finally:
            postgres.close()
    else:
        results["postgres"] = {"skipped": "set LEDGER_BENCH_POSTGRES_URL to measure PostgreSQL"}
    results["duration_s"] = time.perf_counter() - started
    results["notes"] = notes(mode)
    code_now = code_fingerprint()
    if code_now != results["machine"]["code"]:
        results["notes"].append(f"**The code changed during this run** ({results['machine']['code']} -> {code_now}): "
                                "later figures measure newer code.")
    return results


def notes(mode: Mode) -> list[str]:
    """What a reader needs to interpret the figures of a run in this mode."""
    lines = [
        "Ingest rates count the Amplitude events sent (about 1% are duplicates the ledger drops); rebuild "
        "and raw-scan rates count log events (stored domain events, several per call).",
        "Raw baseline: each event msgpack-encoded (msgspec) as one row (uuid5 of its device ID, a version, "
        "topic, state) and `executemany`'d into a table with the DDL of eventsourcing's event table, "
        "one transaction per 1000, WAL as in the ledger's store; encoding time is included.",
        f"Naive baseline: eventsourcing `Application` with default settings (JSON transcoder, no cache) on "
        f"SQLite, one aggregate per device, load + one `save()` per call; measured on the first "
        f"{mode.sqlite.naive_events:,} events: its rate does not depend on size, as every slice of the "
        "workload has about the same events per device.",
        f"Requests of 10 and 100 are measured on the first {mode.sqlite.small_request_events:,} events.",
        "HTTP: the server runs in its own process; the 4 client threads share the machine's cores with it.",
        f"SDK-shaped traffic: the first {mode.sdk_events:,} events; each contender on a fresh database per repeat, "
        "the HTTP clients in this process, the server in its own; latencies are per request, called to answered.",
        "Every figure is the median of interleaved repeats, except scaling, resolve and HTTP (one run each).",
    ]
    if mode is QUICK:
        lines.append("Quick mode: small sizes; resolve latency and peak RSS are not at 1M events.")
    return lines
