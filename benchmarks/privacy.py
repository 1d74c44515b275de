"""The ingest cost of forgetting (docs/privacy.md), and of the design it rejected.

    python -m benchmarks.privacy [EVENTS] [REPEATS]        (LEDGER_BENCH_POSTGRES_URL adds PostgreSQL)

Same run, same workload (`benchmarks.workload`, requests of 100 events), interleaved repeats,
medians:

- ingest with keyed stored IDs (HMAC-SHA256 under the ledger's secret: today's ledger) against
  the same code deriving 0.1.0's unkeyed keys (uuid5 / blake2b: what the commit before did);
- the key derivations alone, per call (a device key, a user key, a receipt key);
- the rejected crypto-shredding design: AES-256-GCM encryption of each tracked event's personal
  fields (IDs, insert_id, properties; needs `pip install cryptography`), per event, against the
  ledger's whole per-event ingest cost. Reading a timeline would pay the decryption as well.
- one deletion job (`forget(..., now=True)`) on the ingested ledger: how long a job takes.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import msgspec

import ledger.write_context
from benchmarks.workload import Workload, requests
from ledger import IdentityLedger
from ledger.domain.keys import UNKEYED, Keys

REQUEST = 100


def _events(count: int) -> list[dict[str, Any]]:
    return list(Workload().events(count))


def _ingest(url: str, events: list[dict[str, Any]], keyed: bool) -> tuple[float, IdentityLedger]:
    """Seconds to ingest `events`; the ledger is left open for the caller."""
    opener = ledger.write_context.open_keys
    with mock.patch.object(ledger.write_context, "open_keys",
                           opener if keyed else (lambda *_args, **_kwargs: UNKEYED)):
        lg = IdentityLedger(url)
    started = time.perf_counter()
    for batch in requests(events, REQUEST):
        lg.ingest(batch)
    return time.perf_counter() - started, lg


def _urls() -> list[tuple[str, Callable[[], str]]]:
    scratch = tempfile.mkdtemp(prefix="bench-privacy-")
    counter = iter(range(10**6))
    urls: list[tuple[str, Callable[[], str]]] = [("sqlite", lambda: f"sqlite:///{scratch}/{next(counter)}.db")]
    postgres = os.environ.get("LEDGER_BENCH_POSTGRES_URL")
    if postgres:
        separator = "&" if "?" in postgres else "?"
        urls.append(("postgres", lambda: f"{postgres}{separator}schema=bench_privacy_{next(counter)}_{os.getpid()}"))
    return urls


def _per_call(derive: Callable[[str], Any], count: int = 200_000) -> float:
    ids = [f"user-{n}@example.org" for n in range(count)]
    started = time.perf_counter()
    for value in ids:
        derive(value)
    return (time.perf_counter() - started) / count


def _aes_per_event(events: list[dict[str, Any]]) -> float:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    encode = msgspec.msgpack.Encoder().encode
    personal = [encode({key: event.get(key) for key in ("device_id", "user_id", "insert_id", "event_properties",
                                                          "user_properties")}) for event in events]
    started = time.perf_counter()
    for plain in personal:
        aead.encrypt(os.urandom(12), plain, None)
    return (time.perf_counter() - started) / len(events)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    events = _events(count)
    print(f"# benchmarks.privacy: {count:,} events in requests of {REQUEST}, medians of {repeats}\n")
    print("| backend | unkeyed (0.1.0 keys) | keyed (HMAC-SHA256) | keyed / unkeyed | one deletion job |")
    print("|---|---|---|---|---|")
    per_event = 0.0
    for backend, new_url in _urls():
        times: dict[bool, list[float]] = {True: [], False: []}
        jobs = []
        for repeat in range(repeats):
            for keyed in ((False, True) if repeat % 2 == 0 else (True, False)):  # neither always goes first
                seconds, lg = _ingest(new_url(), events, keyed)
                times[keyed].append(seconds)
                if keyed:
                    user_id = next(event["user_id"] for event in events if event.get("user_id"))
                    started = time.perf_counter()
                    lg.forget(user_ids=[user_id], requester="benchmark", now=True)
                    jobs.append(time.perf_counter() - started)
                lg.close()
        unkeyed, keyed_s = statistics.median(times[False]), statistics.median(times[True])
        if backend == "sqlite":
            per_event = keyed_s / count
        print(f"| {backend} | {count / unkeyed:,.0f} events/s | {count / keyed_s:,.0f} events/s | "
              f"{keyed_s / unkeyed:.3f}x time | {statistics.median(jobs) * 1000:,.1f} ms |")
    keys = Keys(os.urandom(32))
    print("\n| key derivation, per call | unkeyed | keyed |\n|---|---|---|")
    for name, plain, secret in (("device", UNKEYED.device, keys.device), ("user", UNKEYED.user, keys.user),
                                ("receipt", lambda text: UNKEYED.receipt(text, "insert-1"),
                                 lambda text: keys.receipt(text, "insert-1"))):
        print(f"| {name} | {_per_call(plain) * 1e6:.2f} µs | {_per_call(secret) * 1e6:.2f} µs |")
    try:
        aes = statistics.median(_aes_per_event(events) for _ in range(repeats))
    except ImportError:
        print("\n(crypto-shredding estimate skipped: pip install cryptography)")
        return
    print(f"\nRejected alternative (crypto-shredding): AES-256-GCM of each event's personal fields "
          f"{aes * 1e6:.2f} µs per event, {aes / per_event:.1%} of the ledger's whole SQLite ingest cost per "
          f"event ({per_event * 1e6:.1f} µs), paid again on every timeline read, plus a key look-up per person.")


if __name__ == "__main__":
    main()
