"""SDK-shaped traffic against one bulk import: the goals of many small concurrent requests, in one run.

Browsers and phones flush 10-30 events at a time from many clients at once. On the same
events, each repeat runs on fresh databases, interleaved:

- bulk: 1000-event requests from one caller of the library (the rate everything is compared with);
- small: 10-event requests from 16 threads sharing one `IdentityLedger` (group commit);
- serve: `ledger serve` in its own process, 16 keep-alive HTTP clients posting 10-event `/2/httpapi`
  batches; and `ledger serve --workers N` beside it;
- raw: each event msgpack-encoded into one row, 1000 rows per transaction (`benchmarks.baselines`);
- apply (PostgreSQL): one buffered writer (`ledger apply`'s loop) working off 10-event requests
  that `ledger serve --buffer` put on the local NATS JetStream.

Every request's latency (called to answered) is kept: p50 and p99 are reported beside the rates.
`python -m benchmarks.sdk_traffic` prints each goal with its ratio; `python -m benchmarks` runs the
same measurements (`measure`) and puts them in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import ledger_runs
from benchmarks.baselines import raw_insert
from benchmarks.buffered import accept_run
from benchmarks.buffered_processes import API_KEY
from benchmarks.clients import send_concurrently
from benchmarks.databases import Databases, PostgresDatabases, SQLiteDatabases
from benchmarks.http_api import measure_http
from benchmarks.measure import Run, percentile
from benchmarks.workload import DEFAULT_SEED, Event, Workload, requests
from ledger import IdentityLedger

CLIENTS = 16
SMALL = 10
BULK = 1000
WORKERS = 2


@dataclass(frozen=True)
class Goal:
    """A ratio of two measured rates that the issue asks for (`target` None: reported only)."""

    what: str
    numerator: str
    denominator: str
    target: float | None


GOALS = {
    "sqlite": [
        Goal("10-event requests from 16 callers vs 1000-event requests from one", "small", "bulk", 0.6),
        Goal("`ledger serve`, 16 keep-alive clients, 10-event batches vs library bulk", "serve", "bulk", 0.4),
        Goal(f"`ledger serve --workers {WORKERS}`, same clients vs library bulk", "serve_workers", "bulk", None),
        Goal("bulk ingest vs raw append", "bulk", "raw", 0.5),
    ],
    "postgres": [
        Goal("10-event requests from 16 callers vs 1000-event requests from one", "small", "bulk", 0.6),
        Goal("`ledger serve`, 16 keep-alive clients, 10-event batches vs library bulk", "serve", "bulk", 0.4),
        Goal(f"`ledger serve --workers {WORKERS}`, same clients vs library bulk", "serve_workers", "bulk", None),
        Goal("bulk ingest vs raw append", "bulk", "raw", 0.4),
        Goal("buffered writer (`ledger apply`) vs raw append", "apply", "raw", 0.4),
    ],
}


def small_requests(url: str, events: list[Event]) -> Run:
    """10-event requests from CLIENTS threads sharing one ledger; p50/p99 latency of a request in ms."""
    latencies: list[float] = []
    waiting = list(requests(events, SMALL))

    with IdentityLedger(url) as ledger:
        def send(request: list[Event]) -> None:
            started = time.perf_counter()
            ledger.ingest(request)
            latencies.append(time.perf_counter() - started)

        seconds = send_concurrently(send, waiting, CLIENTS)
    return Run(len(events), seconds, _latency(latencies))


def served(url: str, events: list[Event], log: Path, workers: int = 1) -> Run:
    """`ledger serve` (`--workers N` if more than one) taking 10-event batches from CLIENTS keep-alive clients."""
    extra = ("--workers", str(workers)) if workers > 1 else ()
    result = measure_http(url, events, log, clients=CLIENTS, batch=SMALL, server_args=extra)
    if "per_s" not in result or result["requests_failed"]:
        raise RuntimeError(f"`ledger serve {' '.join(extra)}` failed: "
                           f"{result.get('skipped') or result.get('first_failures')}")
    return Run(result["events_ok"], result["seconds"], {"p50_ms": result["p50_ms"], "p99_ms": result["p99_ms"]})


def applied(postgres_url: str, events: list[Event], workdir: Path) -> Run:
    """One buffered writer applying 10-event requests that one `ledger serve --buffer` accepted."""
    bodies = [json.dumps({"api_key": API_KEY, "events": batch}).encode() for batch in requests(events, SMALL)]
    result = accept_run(workdir, 1, bodies, len(events), buffered=True, measure_writer=True, db_url=postgres_url)
    rate = result["applied_per_s"]
    return Run(len(events), len(events) / rate)


def _latency(seconds: list[float]) -> dict[str, float]:
    seconds.sort()
    return {"p50_ms": round(1000 * percentile(seconds, 0.50), 2), "p99_ms": round(1000 * percentile(seconds, 0.99), 2)}


def measure(databases: Databases, events: list[Event], repeats: int, scratch: Path,
            postgres_url: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every contender once per repeat on fresh databases, interleaved; medians, latencies and the goals."""
    runs: dict[str, list[Run]] = {}
    contenders: dict[str, Callable[[int], Run]] = {
        "bulk": lambda r: ledger_runs.ingest(databases.ledger_url(f"sdk_bulk_r{r}"), requests(events, BULK)),
        "small": lambda r: small_requests(databases.ledger_url(f"sdk_small_r{r}"), events),
        "serve": lambda r: served(databases.ledger_url(f"sdk_serve_r{r}"), events, scratch / "serve.log"),
        "serve_workers": lambda r: served(databases.ledger_url(f"sdk_workers_r{r}"), events, scratch / "workers.log",
                                          WORKERS),
        "raw": lambda r: raw_insert(databases.raw_table(f"sdk_raw_r{r}"), requests(events, BULK)),
    }
    if postgres_url:
        contenders["apply"] = lambda r: applied(databases.ledger_url(f"sdk_apply_r{r}"), events, _fresh(scratch, r))
    failed: dict[str, str] = {}
    for repeat in range(1, repeats + 1):
        for name, run in contenders.items():
            if name in failed:
                continue
            log(f"  {databases.name} repeat {repeat}/{repeats}: {name}")
            try:
                runs.setdefault(name, []).append(run(repeat))
            except Exception as error:
                failed[name] = f"{error!r}"[:300]
                log(f"  {name} failed: {failed[name]}")
    medians = {name: statistics.median(run.rate for run in found) for name, found in runs.items() if found}
    return {
        "events": len(events), "repeats": repeats, "clients": CLIENTS, "small": SMALL, "bulk": BULK,
        "rates": {name: {"median_per_s": round(medians[name], 1), "runs_per_s": [round(run.rate, 1) for run in found],
                         **_median_latency(found)} for name, found in runs.items() if found},
        "failed": failed,
        "goals": [_goal(goal, medians) for goal in GOALS[databases.name]],
    }


def _fresh(scratch: Path, repeat: int) -> Path:
    workdir = scratch / f"apply_r{repeat}"
    workdir.mkdir(exist_ok=True)
    return workdir


def _median_latency(runs: list[Run]) -> dict[str, float]:
    found = [run.extra for run in runs if "p99_ms" in run.extra]
    if not found:
        return {}
    return {key: round(statistics.median(extra[key] for extra in found), 2) for key in ("p50_ms", "p99_ms")}


def _goal(goal: Goal, medians: dict[str, float]) -> dict[str, Any]:
    top, bottom = medians.get(goal.numerator), medians.get(goal.denominator)
    ratio = round(top / bottom, 3) if top is not None and bottom else None
    met = None if ratio is None or goal.target is None else ratio >= goal.target
    return {"what": goal.what, "ratio": ratio, "target": goal.target, "met": met}


def lines(backend: str, found: dict[str, Any]) -> list[str]:
    """The report of one backend: each goal with its ratio, then the rates and latencies."""
    if "rates" not in found:
        return [f"{backend}: {found.get('skipped') or found.get('failed')}"]
    shown = {None: "reported", True: "met", False: "MISSED"}
    out = [f"{backend}: {found['events']:,} events, medians of {found['repeats']} interleaved repeats"]
    for goal in found["goals"]:
        ratio = "not measured" if goal["ratio"] is None else f"{goal['ratio']:.3f}x"
        wanted = "" if goal["target"] is None else f" (goal >= {goal['target']}x)"
        out.append(f"  {goal['what']}: {ratio}{wanted} {shown[goal['met']] if goal['ratio'] is not None else ''}")
    for name, rate in found["rates"].items():
        latency = f", p50 {rate['p50_ms']} ms, p99 {rate['p99_ms']} ms per request" if "p99_ms" in rate else ""
        out.append(f"  {name:>13}: {rate['median_per_s']:>9,.0f} events/s{latency}  runs {rate['runs_per_s']}")
    out += [f"  {name} failed: {error}" for name, error in found["failed"].items()]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sdk_traffic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000, help="events per run (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get("LEDGER_BENCH_POSTGRES_URL"),
                        help="also on PostgreSQL (default: $LEDGER_BENCH_POSTGRES_URL)")
    args = parser.parse_args()
    events = list(Workload(args.seed).events(args.events))

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="ledger-sdk-") as scratch_dir:
        scratch = Path(scratch_dir)
        sqlite = SQLiteDatabases(scratch)
        report = {"sqlite": measure(sqlite, events, args.repeats, scratch, log=progress)}
        sqlite.close()
        if args.postgres:
            postgres = PostgresDatabases(args.postgres)
            try:
                report["postgres"] = measure(postgres, events, args.repeats, scratch, args.postgres, progress)
            finally:
                postgres.close()
    for backend, found in report.items():
        print("\n".join(lines(backend, found)))


if __name__ == "__main__":
    main()
