"""One measurement of a given checkout of the ledger, so two versions compare in the same run.

    PYTHONPATH=CHECKOUT python benchmarks/contender.py ingest URL EVENTS SIZE THREADS MIX [SEED]
    PYTHONPATH=CHECKOUT python benchmarks/contender.py rebuild URL
    PYTHONPATH=CHECKOUT python benchmarks/contender.py timeline URL SAMPLES

Run as a file, not a module: `ledger` then comes from CHECKOUT (PYTHONPATH), while the
workload comes from this directory, so both versions get exactly the same events. Only
the public API is used (`IdentityLedger`, `ingest`, `rebuild`, `timeline`, `event_count`),
which every version has. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from clients import send_concurrently  # from this directory
from workload import DEFAULT_SEED, MIXES, Workload, requests  # from this directory

from ledger import IdentityLedger  # from the checkout under test


def ingest(url: str, count: int, size: int, threads: int, mix: str, seed: int) -> dict[str, Any]:
    """`threads` clients share one ledger and send the requests in order, as SDKs would."""
    with IdentityLedger(url) as ledger:
        seconds = send_concurrently(ledger.ingest, requests(Workload(seed, MIXES[mix]).events(count), size), threads)
        position = ledger.position
    return {"events": count, "seconds": seconds, "rate": count / seconds, "log_events": position}


def rebuild(url: str) -> dict[str, Any]:
    with IdentityLedger(url) as ledger:
        started = time.perf_counter()
        position = ledger.rebuild()
        seconds = time.perf_counter() - started
    return {"log_events": position, "seconds": seconds, "rate": position / seconds}


def timeline(url: str, samples: int) -> dict[str, Any]:
    """Latency of a whole-person page (latest 100 events, newest first) and of the person's event count."""
    with IdentityLedger(url) as ledger:
        stats = ledger.stats()  # a dict before the Stats answer
        people = max(1, stats["users"] if isinstance(stats, dict) else stats.users)
        ids = [1 + (index * 7919) % people for index in range(samples)]
        pages: list[float] = []
        counts: list[float] = []
        for amplitude_id in ids:
            started = time.perf_counter()
            ledger.timeline(amplitude_id, limit=100, newest_first=True)
            pages.append((time.perf_counter() - started) * 1e6)
            started = time.perf_counter()
            ledger.event_count(amplitude_id)
            counts.append((time.perf_counter() - started) * 1e6)
    pages.sort()
    counts.sort()
    return {"lookups": samples, "page_p50_us": pages[len(pages) // 2], "page_p99_us": pages[int(len(pages) * 0.99)],
            "count_p50_us": counts[len(counts) // 2], "count_p99_us": counts[int(len(counts) * 0.99)]}


def main() -> None:
    command, url, *rest = sys.argv[1:]
    if command == "ingest":
        count, size, threads, mix = int(rest[0]), int(rest[1]), int(rest[2]), rest[3]
        result = ingest(url, count, size, threads, mix, int(rest[4]) if len(rest) > 4 else DEFAULT_SEED)
    elif command == "rebuild":
        result = rebuild(url)
    else:
        result = timeline(url, int(rest[0]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
