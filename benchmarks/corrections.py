"""`python -m benchmarks.corrections`: what retracting a bad user ID costs, against a full rebuild.

Builds a ledger from the synthetic history (`ledger.cli.synthetic`, 1,000,000 calls by default,
`--quick` 100,000) where a bad user ID ("guest") replaces the IDs of 0.1% of the tracked calls, as
a misconfigured SDK would. Then, `--runs` times, on a fresh copy of that ledger (SQLite's backup
API): time `retract_user_id("guest")`, then a full `rebuild()` of the same copy; the figures are
medians and the ratio is rebuild / retraction of the same run. A correction re-resolves only the
people reachable from the bad user ID's person through shared devices (docs/corrections.md), so
its cost follows the calls it touches, not the log.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.machine import describe
from ledger import IdentityLedger
from ledger.cli import synthetic
from ledger.cli.sending import Sender

BAD_USER_ID = "guest"
SHARE = 0.001
SEED = 7


def _with_bad_user_id(history: synthetic.History, rng: random.Random) -> Iterator[synthetic.Request]:
    """The history's requests, a tracked call in a thousand carrying the bad user ID instead of its own."""
    for request in history.requests:
        if not request.identify:
            for call in request.calls:
                if call["event_type"] != "$identify" and rng.random() < SHARE:
                    call["user_id"] = BAD_USER_ID
        yield request


def build(path: Path, calls: int) -> dict[str, Any]:
    """Ingest the history into a new SQLite ledger at `path`; returns what was stored and how long it took."""
    rng = random.Random(SEED)
    started = time.perf_counter()
    carried = 0
    sender = Sender()  # the history holds a few broken calls on purpose: refused ones are dropped, the rest resent
    with IdentityLedger(f"sqlite:///{path}") as lg:
        for request in _with_bad_user_id(synthetic.generate(calls), rng):
            carried += sum(call.get("user_id") == BAD_USER_ID for call in request.calls)
            sender.send(lg.identify if request.identify else lg.ingest,
                        [(str(index), call) for index, call in enumerate(request.calls)])
        stats, position = lg.stats(), lg.position
    return {"seconds": time.perf_counter() - started, "events": stats.events, "position": position,
            "bad_calls": carried, "merges": stats.merges}


def _copy(source: Path, target: Path) -> None:
    """The database and its key file (the ledger's secret lives beside it: docs/privacy.md)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    shutil.copyfile(f"{source}.key", f"{target}.key")


def run_once(base: Path, scratch: Path) -> dict[str, Any]:
    """Retract the bad user ID on a fresh copy, then rebuild that copy: seconds of each, and what changed."""
    _copy(base, scratch)
    with IdentityLedger(f"sqlite:///{scratch}") as lg:
        started = time.perf_counter()
        correction = lg.retract_user_id(BAD_USER_ID, reason="benchmark", requester="benchmarks.corrections")
        retracted = time.perf_counter() - started
        started = time.perf_counter()
        lg.rebuild()
        rebuilt = time.perf_counter() - started
    scratch.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{scratch}{suffix}").unlink(missing_ok=True)
    changes = correction.changes
    return {"retract": retracted, "rebuild": rebuilt, "calls": changes.calls, "people_before": changes.people_before,
            "people_after": changes.people_after, "events_reattributed": changes.events_reattributed}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.corrections", description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000, help="calls in the history (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="100,000 calls")
    parser.add_argument("--runs", type=int, default=3, help="retraction + rebuild runs, each on a fresh copy")
    args = parser.parse_args(argv)
    calls = 100_000 if args.quick else args.calls
    machine = describe()
    with tempfile.TemporaryDirectory(prefix="bench-corrections-") as folder:
        base = Path(folder) / "base.db"
        built = build(base, calls)
        print(f"built: {calls:,} calls -> {built['events']:,} tracked events, log position {built['position']:,}, "
              f"{built['bad_calls']:,} calls carrying {BAD_USER_ID!r}, in {built['seconds']:.0f} s")
        runs = []
        for number in range(args.runs):
            runs.append(run_once(base, Path(folder) / f"run{number}.db"))
            print(f"run {number + 1}: retraction {runs[-1]['retract']:.3f} s, rebuild {runs[-1]['rebuild']:.2f} s")
    retract = statistics.median(run["retract"] for run in runs)
    rebuild = statistics.median(run["rebuild"] for run in runs)
    first = runs[0]
    print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, {machine['python']}, SQLite {machine['sqlite']}, "
          f"commit {machine['code']}, load average at start {machine['load_average']}")
    print(f"| calls sent | log position | calls carrying {BAD_USER_ID!r} | calls re-resolved | people before -> after "
          f"| events re-attributed | retraction (median s) | rebuild (median s) | rebuild / retraction |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {calls:,} | {built['position']:,} | {built['bad_calls']:,} | {first['calls']:,} | {first['people_before']:,} -> "
          f"{first['people_after']:,} | {first['events_reattributed']:,} | {retract:.3f} | {rebuild:.2f} | "
          f"{rebuild / retract:.1f}x |")
    retractions = ", ".join(f"{run['retract']:.3f}" for run in runs)
    rebuilds = ", ".join(f"{run['rebuild']:.2f}" for run in runs)
    print(f"runs: retraction {retractions} s; rebuild {rebuilds} s")


if __name__ == "__main__":
    main()
