"""One measurement in a process of its own, so its peak RSS is its own and sizes don't pollute each other.

    python -m benchmarks.isolated ingest URL EVENTS [--seed S] [--samples K --sample-file F]
    python -m benchmarks.isolated replay URL [--sample-file F]
    python -m benchmarks.isolated raw DIRECTORY LABEL EVENTS [--seed S]

Prints one JSON object on its last stdout line. `ingest` generates the workload
lazily while it sends it and can save a sample of device IDs (every n-th call's,
so busy devices are looked up more often, as in real traffic); `replay` rebuilds the
projections, then, given that sample, measures `resolve()` latency; `raw` measures
the physical limit (see `benchmarks.baselines`) at the same size, in an SQLite file
in DIRECTORY.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import ledger_runs
from benchmarks.baselines import raw_insert
from benchmarks.databases import SQLiteDatabases
from benchmarks.measure import peak_rss_mb
from benchmarks.workload import DEFAULT_SEED, Event, Workload, requests

REQUEST_SIZE = 1000


def _sampled(events: Iterator[Event], every: int, sample: list[str]) -> Iterator[Event]:
    for index, event in enumerate(events):
        if index % every == 0:
            sample.append(event["device_id"])
        yield event


def ingest(url: str, count: int, seed: int, samples: int, sample_file: Path | None) -> dict[str, Any]:
    sample: list[str] = []
    events = _sampled(Workload(seed).events(count), max(1, count // max(1, samples)), sample)
    run = ledger_runs.ingest(url, requests(events, REQUEST_SIZE))
    if sample_file is not None:
        sample_file.write_text(json.dumps(sample))
    return {"events": run.items, "seconds": run.seconds, "rate": run.rate, **run.extra,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def replay(url: str, sample_file: Path | None) -> dict[str, Any]:
    run = ledger_runs.rebuild(url)
    result: dict[str, Any] = {"log_events": run.items, "seconds": run.seconds, "rate": run.rate,
                              "peak_rss_mb": round(peak_rss_mb(), 1)}
    if sample_file is not None:
        result["resolve"] = ledger_runs.resolve_latency(url, json.loads(sample_file.read_text()))
    return result


def raw(directory: Path, label: str, count: int, seed: int) -> dict[str, Any]:
    run = raw_insert(SQLiteDatabases(directory).raw_table(label), requests(Workload(seed).events(count), REQUEST_SIZE))
    return {"events": run.items, "seconds": run.seconds, "rate": run.rate, "peak_rss_mb": round(peak_rss_mb(), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.isolated")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest_parser = commands.add_parser("ingest")
    ingest_parser.add_argument("url")
    ingest_parser.add_argument("events", type=int)
    ingest_parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ingest_parser.add_argument("--samples", type=int, default=0)
    ingest_parser.add_argument("--sample-file", type=Path)
    replay_parser = commands.add_parser("replay")
    replay_parser.add_argument("url")
    replay_parser.add_argument("--sample-file", type=Path)
    raw_parser = commands.add_parser("raw")
    raw_parser.add_argument("directory", type=Path)
    raw_parser.add_argument("label")
    raw_parser.add_argument("events", type=int)
    raw_parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    if args.command == "ingest":
        result = ingest(args.url, args.events, args.seed, args.samples, args.sample_file)
    elif args.command == "replay":
        result = replay(args.url, args.sample_file)
    else:
        result = raw(args.directory, args.label, args.events, args.seed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
