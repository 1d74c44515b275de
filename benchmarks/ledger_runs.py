"""The system under test: timed ingest, rebuild and resolve runs of the IdentityLedger.

Only the ledger's own calls are timed: generating requests and opening or closing
the database stay outside the clock, so the figures compare with the baselines.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from benchmarks.clients import send_concurrently
from benchmarks.floor import Transaction, record_writes
from benchmarks.measure import Run, percentile
from benchmarks.workload import Event
from ledger import IdentityLedger


def ingest(url: str, requests: Iterable[list[Event]], writes: list[Transaction] | None = None) -> Run:
    """Send every request through `ledger.ingest`; items are the events sent (duplicates included).

    Given `writes`, each committed write transaction is recorded there (`benchmarks.floor`).
    """
    sent = duplicates = 0
    seconds = 0.0
    with IdentityLedger(url) as ledger:
        if writes is not None:
            record_writes(ledger, writes)
        for request in requests:
            started = time.perf_counter()
            report = ledger.ingest(request)
            seconds += time.perf_counter() - started
            sent += len(request)
            duplicates += report.duplicates
        log_events = ledger.position
    return Run(sent, seconds, {"duplicates": duplicates, "log_events": log_events,
                               "log_events_per_call": round(log_events / sent, 3) if sent else 0})


def ingest_concurrently(url: str, requests: Iterable[list[Event]], threads: int,
                        writes: list[Transaction] | None = None) -> Run:
    """`threads` clients share one ledger and send the requests in order; wall time from first to last."""
    waiting = list(requests)
    with IdentityLedger(url) as ledger:
        if writes is not None:
            record_writes(ledger, writes)
        seconds = send_concurrently(ledger.ingest, waiting, threads)
    return Run(sum(len(request) for request in waiting), seconds)


def rebuild(url: str) -> Run:
    """Replay every projection from position 0; items are the log events (notifications) replayed."""
    with IdentityLedger(url) as ledger:
        started = time.perf_counter()
        position = ledger.rebuild()
        seconds = time.perf_counter() - started
    return Run(position, seconds)


def resolve_latency(url: str, device_ids: list[str], passes: int = 3) -> dict[str, float]:
    """Latency of `resolve(device_id=...)` in µs, after one untimed pass has warmed the ledger."""
    timings: list[float] = []
    with IdentityLedger(url) as ledger:
        for device_id in device_ids:
            ledger.resolve(device_id=device_id)
        clock = time.perf_counter_ns
        for _ in range(passes):
            for device_id in device_ids:
                started = clock()
                ledger.resolve(device_id=device_id)
                timings.append((clock() - started) / 1000)
    timings.sort()
    return {
        "lookups": len(timings),
        "p50_us": round(percentile(timings, 0.50), 1),
        "p99_us": round(percentile(timings, 0.99), 1),
        "max_us": round(timings[-1], 1) if timings else 0.0,
    }
