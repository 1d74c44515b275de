"""Scaling: ingest and rebuild rates, and peak RSS, at growing ledger sizes, each in fresh processes.

The raw limit is measured at every size too, since SQLite itself slows as its random-key
index grows. The largest size also gives the `resolve()` latency, measured on that
ledger after its rebuild. A rate that falls by more than `MAX_DROP` from the second-largest to
the largest size is flagged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.databases import SQLiteDatabases

REPO = Path(__file__).resolve().parent.parent
MAX_DROP = 0.30


class IsolatedRunFailed(RuntimeError):
    """A child measurement exited with an error; its message ends with the child's error line."""


def run_isolated(*args: str) -> dict[str, Any]:
    """Run `python -m benchmarks.isolated ARGS` and return the JSON it prints last."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.isolated", *args], cwd=REPO,
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-5000:], file=sys.stderr, flush=True)
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise IsolatedRunFailed(f"{args[0]} failed: {lines[-1][:300]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure(databases: SQLiteDatabases, size: int, seed: int, sample_file: Path | None, resolve_samples: int,
             row: dict[str, Any]) -> dict[str, Any]:
    """Fill `row` with one size's figures as they come; returns the resolve latency, if asked for."""
    print(f"  scaling: {size:,} events: raw limit", file=sys.stderr, flush=True)
    limit = run_isolated("raw", str(databases.directory), f"scale_raw_{size}", str(size), "--seed", str(seed))
    row["raw_insert_per_s"] = round(limit["rate"], 1)
    url = databases.ledger_url(f"scale_{size}")
    sample_args = ["--samples", str(resolve_samples), "--sample-file", str(sample_file)] if sample_file else []
    print(f"  scaling: {size:,} events: ingest", file=sys.stderr, flush=True)
    ingested = run_isolated("ingest", url, str(size), "--seed", str(seed), *sample_args)
    row.update(ingest_per_s=round(ingested["rate"], 1), ingest_peak_rss_mb=ingested["peak_rss_mb"])
    print(f"  scaling: {size:,} events: rebuild", file=sys.stderr, flush=True)
    replayed = run_isolated("replay", url, *(["--sample-file", str(sample_file)] if sample_file else []))
    row.update(log_events=replayed["log_events"], rebuild_per_s=round(replayed["rate"], 1),
               rebuild_peak_rss_mb=replayed["peak_rss_mb"])
    return {"ledger_events": size, **replayed["resolve"]} if "resolve" in replayed else {}


def scale(databases: SQLiteDatabases, sizes: list[int], seed: int, scratch: Path,
          resolve_samples: int) -> dict[str, Any]:
    """Every size in turn; a failed child is recorded in its row and the next size still runs."""
    rows: list[dict[str, Any]] = []
    resolve: dict[str, Any] = {}
    for size in sizes:
        row: dict[str, Any] = {"events": size}
        rows.append(row)
        sample_file = scratch / f"devices_{size}.json" if size == sizes[-1] else None
        try:
            resolve = _measure(databases, size, seed, sample_file, resolve_samples, row) or resolve
        except IsolatedRunFailed as failure:
            row["failed"] = str(failure)
    return {"sizes": rows, "flags": rate_drops(rows), "drops": drops(rows), "resolve": resolve}


def rate_drops(rows: list[dict[str, Any]]) -> list[str]:
    """Flags: ingest falling more than the raw limit does between the two largest sizes; rebuild more than 30%."""
    if len(rows) < 2:
        return []
    before, after = rows[-2], rows[-1]
    flags = []
    keys = ("ingest_per_s", "raw_insert_per_s")
    if all(key in row for key in keys for row in (before, after)) and (
            after["ingest_per_s"] / before["ingest_per_s"] < after["raw_insert_per_s"] / before["raw_insert_per_s"]):
            flags.append(f"ingest rate falls {_drop(before, after, 'ingest_per_s')} from {before['events']:,} to "
                         f"{after['events']:,} events, the raw SQLite limit {_drop(before, after, 'raw_insert_per_s')}")
    if "rebuild_per_s" in before and "rebuild_per_s" in after and after["rebuild_per_s"] < (1 - MAX_DROP) * before[
            "rebuild_per_s"]:
        flags.append(f"rebuild rate falls {_drop(before, after, 'rebuild_per_s')} (limit {MAX_DROP:.0%})")
    return flags


def drops(rows: list[dict[str, Any]]) -> str:
    """The drops between the two largest sizes, flagged or not."""
    if len(rows) < 2 or not all("ingest_per_s" in row and "raw_insert_per_s" in row for row in rows[-2:]):
        return ""
    before, after = rows[-2], rows[-1]
    return (f"ingest falls {_drop(before, after, 'ingest_per_s')}, the raw limit "
            f"{_drop(before, after, 'raw_insert_per_s')} ({before['events']:,} -> {after['events']:,} events)")


def _drop(before: dict[str, Any], after: dict[str, Any], key: str) -> str:
    return f"{1 - after[key] / before[key]:.0%}"
