"""The storage floor: the ledger's own write transactions, replayed with nothing between them.

While the ledger ingests, every call its write transactions make (`Transaction.execute`, `query`,
`executemany`, `insert_events`, `copy`, with their arguments) is recorded, one list per
committed transaction. Replaying those lists, transaction by transaction, into a fresh
ledger of the same schema costs exactly the storage work the ledger's shape demands (log
rows, insert-ID receipts, identity projections, their indexes, one commit per request)
and none of its Python: validation, resolution, encoding and bookkeeping are already done.

floor/raw says what the storage shape allows against the physical limit; ledger/floor
says how close the code comes to its own floor. The prefetch reads (on the reader
connection) are not part of it: the floor is what any code writing these rows must pay.

`python -m benchmarks` reports it at 1000 events/request; for SDK-sized requests
from concurrent clients (group commit decides the transactions), run
`python -m benchmarks.floor --size 10 --threads 4`. That command also prints what a target
ratio against the raw limit (`--target`) leaves the code per event, beside what the rules
alone ask of any code per event (`rules_minimum`: validation and duplicate keys).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.baselines import raw_insert
from benchmarks.databases import SQLiteDatabases
from benchmarks.measure import Run, Series
from benchmarks.workload import Event, Workload, requests
from ledger import IdentityLedger
from ledger.domain.calls import accept
from ledger.domain.keys import SECRET_BYTES, Keys
from ledger.domain.timeline import Timeline
from ledger.store.writer import RECEIPTS
from projections import tables

#: One committed transaction: the `Transaction` calls it made, in order, with their arguments.
Transaction = list[tuple[str, tuple[Any, ...]]]
#: The first "call" of a transaction the ledger pipelined (PostgreSQL), so the replay does too.
PIPELINED = "pipelined"


class _RecordingTransaction:
    """Passes every call on to the real transaction and notes it."""

    def __init__(self, tx: Any, calls: Transaction) -> None:
        self._tx = tx
        self._calls = calls
        self.arrays = tx.arrays
        self.backend = tx.backend
        self.locking = tx.locking
        self.copy = self._copy if tx.copy is not None else None

    def _call(self, name: str, *args: Any) -> Any:
        self._calls.append((name, args))
        return getattr(self._tx, name)(*args)

    def execute(self, sql: str, params: Any = ()) -> None:
        self._call("execute", sql, params)

    def query(self, sql: str, params: Any = ()) -> Any:
        return self._call("query", sql, params)

    def executemany(self, sql: str, rows: list[Any]) -> None:
        self._call("executemany", sql, rows)

    def insert_events(self, rows: list[Any]) -> list[int]:
        return self._call("insert_events", rows)  # type: ignore[no-any-return]

    def latest(self) -> int:
        return self._call("latest")  # type: ignore[no-any-return]

    def mark_applied(self, stream: str, sequence: int, stored: int | None) -> None:
        self._call("mark_applied", stream, sequence, stored)

    def changed(self) -> int:
        return int(self._tx.changed())

    def _copy(self, table: str, columns: tuple[str, ...], rows: list[Any]) -> None:
        self._calls.append(("copy", (table, columns, rows)))
        self._tx.copy(table, columns, rows)


class _RecordingWriter:
    """The ledger's writer, keeping the calls of every transaction that commits."""

    def __init__(self, writer: Any, committed: list[Transaction]) -> None:
        self._writer = writer
        self._committed = committed

    @contextmanager
    def transaction(self, pipelined: bool = False) -> Iterator[_RecordingTransaction]:
        calls: Transaction = [(PIPELINED, ())] if pipelined else []
        with self._writer.transaction(pipelined) as tx:
            yield _RecordingTransaction(tx, calls)
        self._committed.append(calls)  # reached only once the commit succeeded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


def record_writes(ledger: IdentityLedger, committed: list[Transaction]) -> None:
    """From now on, append each committed write transaction of `ledger` to `committed`."""
    context = ledger._context
    context.writer = _RecordingWriter(context.writer, committed)  # type: ignore[assignment]


#: The parts of the ledger's shape, by the tables they write; "timeline" and "facts" split the log by topic.
PARTS = {
    "the log: tracked and identify events": frozenset({"timeline"}),
    "the log: identity facts": frozenset({"facts"}),
    "insert-ID receipts": frozenset({RECEIPTS}),
    "audit trail": frozenset({tables.audit.name}),
    "other identity projections": frozenset({tables.devices.name, tables.device_identities.name,
                                             tables.identities.name, tables.merges.name}),
}
_TIMELINE_TOPICS = frozenset({Timeline.Tracked.TOPIC, Timeline.Identified.TOPIC})
_TABLE = re.compile(r"\b(?:INTO|UPDATE|FROM)\s+(\w+)", re.IGNORECASE)


def _without(name: str, args: tuple[Any, ...], parts: frozenset[str]) -> tuple[Any, ...] | None:
    """The call's arguments with what belongs to `parts` left out; None to skip the call."""
    if name == "insert_events":
        rows = [row for row in args[0] if ("timeline" if row[2] in _TIMELINE_TOPICS else "facts") not in parts]
        return (rows,) if rows else None
    if name == "copy":
        return None if args[0] in parts else args
    found = _TABLE.search(args[0]) if name in ("execute", "query", "executemany") else None
    return None if found and found.group(1) in parts else args


def replay(url: str, committed: list[Transaction], events: int, without: frozenset[str] = frozenset()) -> Run:
    """Run the recorded transactions against a fresh ledger at `url`; items are the events they stored.

    `without` (names from `PARTS`' values) leaves those writes out, to tell what each part costs.
    """
    with IdentityLedger(url) as ledger:
        writer = ledger._context.writer
        started = time.perf_counter()
        for calls in committed:
            pipelined = bool(calls) and calls[0][0] == PIPELINED
            with writer.transaction(pipelined) as tx:
                for name, args in (calls[1:] if pipelined else calls):
                    kept = _without(name, args, without) if without else args
                    if kept is not None:
                        getattr(tx, name)(*kept)
        seconds = time.perf_counter() - started
    return Run(events, seconds)


def rules_minimum(events: list[Event], size: int) -> dict[str, Run]:
    """What the rules make every implementation pay per event that a raw append does not, measured alone.

    Validating the request contract (`accept`) and deriving each call's duplicate key under a
    ledger secret (`Keys.receipt`). The raw append encodes the event and derives a stream ID
    too, so neither is counted. Items are events; one run each (`main` repeats them).
    """
    batches = list(requests(events, size))
    started = time.perf_counter()
    calls = [call for batch in batches for call in accept(batch, server_time=0).calls]
    validated = time.perf_counter() - started
    receipt = Keys(bytes(SECRET_BYTES)).receipt
    started = time.perf_counter()
    for call in calls:
        if call.insert_id is not None:
            receipt(call.device_id, call.insert_id)
    keyed = time.perf_counter() - started
    return {"validation": Run(len(events), validated), "duplicate key": Run(len(events), keyed)}


def main() -> None:
    """`python -m benchmarks.floor`: the ledger, its storage floor and the raw limit, at one request size."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=main.__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=10, help="events per request")
    parser.add_argument("--threads", type=int, default=4, help="client threads sharing the ledger")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true", help="also replay without each part of the shape")
    parser.add_argument("--target", type=float, default=0.5, metavar="RATIO",
                        help="the ledger/raw ratio wanted; prints what it leaves the code per event (default 0.5)")
    args = parser.parse_args()
    from benchmarks import ledger_runs  # not at the top: ledger_runs records through this module

    events = list(Workload().events(args.events))
    ledger, floor, raw = Series("ledger"), Series("storage floor"), Series("raw, 1000 rows/transaction")
    parts = {part: Series(f"floor without {part}") for part in (PARTS if args.breakdown else ())}
    minimum = {name: Series(name) for name in ("validation", "duplicate key")}
    with tempfile.TemporaryDirectory(prefix="ledger-floor-") as scratch:
        databases = SQLiteDatabases(Path(scratch))
        for repeat in range(1, args.repeats + 1):
            writes: list[Transaction] = []
            ledger.add(ledger_runs.ingest_concurrently(databases.ledger_url(f"ledger_r{repeat}"),
                                                       requests(events, args.size), args.threads, writes))
            floor.add(replay(databases.ledger_url(f"floor_r{repeat}"), writes, len(events)))
            for index, (part, series) in enumerate(parts.items()):
                series.add(replay(databases.ledger_url(f"part{index}_r{repeat}"), writes, len(events), PARTS[part]))
            raw.add(raw_insert(databases.raw_table(f"raw_r{repeat}"), requests(events, 1000)))
            for name, run in rules_minimum(events, args.size).items():
                minimum[name].add(run)
            print(f"repeat {repeat}: {len(writes)} commits, {len(events) / len(writes):.0f} events each",
                  file=sys.stderr, flush=True)
    print(f"SQLite, {args.events:,} events, {args.size}/request, {args.threads} threads; medians of {args.repeats}:")
    for series in (ledger, floor, raw):
        print(f"  {series.name:<28} {series.median:>10,.0f} events/s   runs {[round(r.rate) for r in series.runs]}")
    print(f"  ledger/floor {ledger.median / floor.median:.2f}x, floor/raw {floor.median / raw.median:.2f}x, "
          f"ledger/raw {ledger.median / raw.median:.2f}x")
    left = 1e6 / (args.target * raw.median) - 1e6 / floor.median
    takes = f"the code takes {1e6 / ledger.median - 1e6 / floor.median:.1f} µs/event beyond it"
    if left > 0:
        print(f"A ledger at {args.target}x raw leaves its code {left:.1f} µs/event beyond the storage floor ({takes}).")
    else:
        print(f"At {args.target}x raw the storage floor alone is too slow at this request size ({takes}).")
    print("What the rules alone ask of any code, per event:")
    for name, series in minimum.items():
        print(f"  {name:<28} {1e6 / series.median:>8.1f} µs/event")
    if parts:
        print("What each part of the shape costs (share of the floor's time, from medians):")
        for part, series in parts.items():
            print(f"  {part:<38} {1 - floor.median / series.median:>6.0%}")


if __name__ == "__main__":
    main()
