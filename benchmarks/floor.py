"""The storage floor: the ledger's own write transactions, replayed with nothing between them.

While the ledger ingests, every call its write transactions make (`Transaction.execute`,
`executemany`, `insert_events`, `copy`, with their arguments) is recorded, one list per
committed transaction. Replaying those lists, transaction by transaction, into a fresh
ledger of the same schema costs exactly the storage work the ledger's shape demands (log
rows, insert-ID receipts, identity projections, their indexes, one commit per request)
and none of its Python: validation, resolution, encoding and bookkeeping are already done.

floor/raw says what the storage shape allows against the physical limit; ledger/floor
says how close the code comes to its own floor. The prefetch reads (on the reader
connection) are not part of it: the floor is what any code writing these rows must pay.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

from benchmarks.measure import Run
from ledger import IdentityLedger

#: One committed transaction: the `Transaction` calls it made, in order, with their arguments.
Transaction = list[tuple[str, tuple[Any, ...]]]


class _RecordingTransaction:
    """Passes every call on to the real transaction and notes it."""

    def __init__(self, tx: Any, calls: Transaction) -> None:
        self._tx = tx
        self._calls = calls
        self.postgres = tx.postgres
        self.locking = tx.locking
        self.copy = self._copy if tx.copy is not None else None

    def _call(self, name: str, *args: Any) -> Any:
        self._calls.append((name, args))
        return getattr(self._tx, name)(*args)

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self._call("execute", sql, params)

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
    def transaction(self) -> Iterator[_RecordingTransaction]:
        calls: Transaction = []
        with self._writer.transaction() as tx:
            yield _RecordingTransaction(tx, calls)
        self._committed.append(calls)  # reached only once the commit succeeded

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


def record_writes(ledger: IdentityLedger, committed: list[Transaction]) -> None:
    """From now on, append each committed write transaction of `ledger` to `committed`."""
    recorder = ledger._recorder  # noqa: SLF001 - a measuring probe on the one object that writes
    recorder._writer = _RecordingWriter(recorder._writer, committed)  # type: ignore[assignment]  # noqa: SLF001


def replay(url: str, committed: list[Transaction], events: int) -> Run:
    """Run the recorded transactions against a fresh ledger at `url`; items are the events they stored."""
    with IdentityLedger(url) as ledger:
        writer = ledger._recorder._writer  # noqa: SLF001
        started = time.perf_counter()
        for calls in committed:
            with writer.transaction() as tx:
                for name, args in calls:
                    getattr(tx, name)(*args)
        seconds = time.perf_counter() - started
    return Run(events, seconds)
