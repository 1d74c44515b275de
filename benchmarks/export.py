"""`python -m benchmarks.export --events 100000 --runs 3`: export to Parquet and JSON Lines, and the change feed.

A SQLite ledger of `--events` tracked events (a tenth of them logins that bind and merge) is exported
`--runs` times by `ledger export` in a subprocess each, so its peak RSS (ru_maxrss of the child) is the
export's own: Parquet (five tables) and, as the baseline measured in the same run, the JSON Lines
history. Then the change feed: `lg.changes` pages read per second, and `ledger feed --drain` to a
private stream on the local NATS (`--nats`, deleted afterwards) in changes per second. Medians printed.
Full figures (1M events) need a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.feed_faults import NATS_URL, _stream
from ledger import IdentityLedger

#: The child prints its own peak RSS (KiB, Linux) on its last stderr line.
_MAIN = ("import resource, sys; from ledger.cli import main; code = main(); "
         "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(code)")


def make_ledger(db: str, events: int) -> int:
    with IdentityLedger(db) as lg:
        for start in range(0, events, 2000):
            lg.ingest([{"device_id": f"device-{n // 4:07}", "event_type": "view", "event_properties": {"n": n},
                        **({"user_id": f"user-{n // 40:07}"} if n % 10 == 9 else {})}
                       for n in range(start, min(events, start + 2000))])
        return lg.position


def run_child(arguments: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one `ledger ...` subprocess."""
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, "-c", _MAIN, *arguments], check=True, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    seconds = time.perf_counter() - started
    return seconds, int(finished.stderr.strip().splitlines()[-1]) / 1024


def changes_rate(db: str) -> tuple[int, float]:
    with IdentityLedger(db) as lg:
        started, after, count = time.perf_counter(), 0, 0
        while (page := lg.changes(after, 1000)).changes:
            count += len(page.changes)
            after = page.next
        return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nats", default=NATS_URL, help="the NATS for the feed (empty: skip it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as scratch:
        db = f"sqlite:///{Path(scratch) / 'export.db'}"
        position = make_ledger(db, args.events)
        results = {}
        for name, extra in (("jsonl", ["--out", str(Path(scratch) / "history.jsonl")]),
                            ("parquet", ["--format", "parquet", "--out", str(Path(scratch) / "warehouse")])):
            runs = [run_child(["export", "--db", db, *extra]) for _ in range(args.runs)]
            results[name] = (statistics.median(run[0] for run in runs), max(run[1] for run in runs))
        count, seconds = statistics.median_low(changes_rate(db) for _ in range(args.runs))
        feed = None
        if args.nats:
            stream = f"bench_export_{uuid.uuid4().hex[:12]}"
            try:
                feed = run_child(["feed", "--db", db, "--to", args.nats, "--subject", f"{stream}.changes",
                                  "--stream", stream, "--drain"])[0]
            finally:
                asyncio.run(_stream(args.nats, stream, delete=True))
    print(f"\n(python -m benchmarks.export --events {args.events} --runs {args.runs}; ledger position {position:,})\n")
    print("| export of | median s | events/s | peak RSS MB | time vs JSON Lines |\n|---|---|---|---|---|")
    for name, (median, peak) in results.items():
        print(f"| {args.events:,} events, {name} | {median:.2f} | {args.events / median:,.0f} | {peak:.0f} | "
              f"{median / results['jsonl'][0]:.2f}x |")
    print(f"\n| change feed | changes | median s | changes/s |\n|---|---|---|---|\n"
          f"| lg.changes pages of 1000 | {count:,} | {seconds:.2f} | {count / seconds:,.0f} |")
    if feed is not None:
        print(f"| ledger feed --drain to JetStream (one run) | {count:,} | {feed:.2f} | {count / feed:,.0f} |")


if __name__ == "__main__":
    main()
