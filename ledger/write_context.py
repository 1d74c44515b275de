"""The write side of one ledger, built once: what every use case that stores facts takes.

Ingest (`ledger.ingesting`), corrections (`ledger.correcting`), deletion jobs
(`ledger.deleting`) and user mapping (`ledger.mapping`) all write the same way: resolve in a
fresh unit of work, then ONE transaction that holds the log rows, the read side's rows and
their position (`WriteContext.commit`), retried on a conflict (`in_fresh_units`). The
collaborators they need (store, writer, log, cache, projection runner, follower, clock and the
ledger's lock) are opened here, in one place, instead of being handed to each of them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ledger.errors import ConflictRetriesExhausted, SchemaTooNew
from ledger.following import LogFollower
from ledger.store import settings
from ledger.store.aggregate_cache import AggregateCache
from ledger.store.database import Store
from ledger.store.event_log import EventLog
from ledger.store.key_file import open_keys
from ledger.store.unit_of_work import UnitOfWork
from ledger.store.writer import COPY_FROM, Conflict, Transaction, Writer
from ledger.store.writer_lock import WriterLock
from projections.runner import ProjectionRunner, ReadSideTooNew

MAX_ATTEMPTS = 20
#: The longest and the first waits after a conflict (`back_off`).
BACK_OFF_MAX_S = 0.05
BACK_OFF_FIRST_S = 0.001
T = TypeVar("T")


def back_off(attempt: int) -> None:
    """Wait a random moment, growing with each conflict, before resolving again.

    Two writers that resolve side by side fall into step: the one that commits first
    starts its next request while the other resolves again, and wins again. Jitter
    breaks the step; the first retry waits at most a millisecond.
    """
    time.sleep(random.uniform(0, min(BACK_OFF_MAX_S, BACK_OFF_FIRST_S * 2 ** attempt)))


def in_fresh_units(cache: AggregateCache, server_time: int, work: Callable[[UnitOfWork], T]) -> T:
    """Run `work` on a fresh unit of work until it stores without a conflict, up to `MAX_ATTEMPTS` times.

    Another writer may win a race: the store refuses a stale version or a taken key
    (`Conflict`), and nothing is stored. The unit is discarded and `work` runs again on fresh
    state, after a back-off. Any other error discards the unit and is raised.
    """
    conflict: Conflict | None = None
    for attempt in range(MAX_ATTEMPTS):
        unit = UnitOfWork(cache, server_time)
        try:
            return work(unit)
        except Conflict as error:
            unit.discard()
            cache.forget_absent()
            conflict = error
            back_off(attempt)
        except BaseException:
            unit.discard()
            raise
    raise ConflictRetriesExhausted(f"gave up after {MAX_ATTEMPTS} conflicting attempts") from conflict


@dataclass(eq=False)
class WriteContext:
    """One ledger's write side: opened by `open`, closed by `close`, shared by every use case."""

    store: Store
    writers: WriterLock
    writer: Writer
    log: EventLog
    cache: AggregateCache
    runner: ProjectionRunner
    follower: LogFollower
    clock: Callable[[], int]
    #: Held by every write (and by the live reads of the cache): one request is resolved at a time per process.
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: Deletion jobs run so far, as this process last knew (`ledger.store.settings`).
    forgets: int = 0

    @classmethod
    def open(cls, store: Store, *, cache_size: int, clock: Callable[[], int], key_file: str | None) -> WriteContext:
        """Open the write side on `store`, closing what it opened if a step is refused (a newer schema...)."""
        opened: list[WriterLock | EventLog | Writer] = []
        try:
            writers = WriterLock(store)
            opened.append(writers)
            log = EventLog(store)
            opened.append(log)
            writer = Writer(store)
            opened.append(writer)
            cache = AggregateCache(log, open_keys(store, log.latest() > 0, key_file), cache_size)
            try:
                runner = ProjectionRunner(store.engine, store.backend, log.read)
            except ReadSideTooNew as error:
                raise SchemaTooNew(f"{error}: upgrade identity-ledger to open it") from error
            with store.engine.connect() as connection:
                forgets = int(settings.read(connection, settings.FORGETS) or 0)
        except BaseException:
            for each in reversed(opened):
                each.close()
            raise
        follower = LogFollower(log, cache, runner, writers.check_file)
        return cls(store, writers, writer, log, cache, runner, follower, clock, forgets=forgets)

    @property
    def events_table(self) -> str:
        """The log's table (eventsourcing's stored events)."""
        return self.store.events_table

    def check_forgets(self, tx: Transaction) -> None:
        """A deletion job that ran since this batch was resolved may have erased what it read: resolve again."""
        forgets = settings.forgets_in(tx)
        if forgets != self.forgets:
            self.forgets = forgets
            self.cache.clear()
            raise Conflict("a deletion job ran meanwhile")

    def follow_in(self, tx: Transaction) -> int:
        """Follow the log to its end from inside a write transaction; returns the position.

        The transaction holds the database's write lock: this is the writer's turn, and nothing
        is stored by anyone until it ends, so an operator action planned in it (a correction)
        cannot be overtaken by ingest from another process. Raises `Conflict` if the projections
        are behind the log: they catch up in transactions of their own, outside the turn.
        """
        if not self.runner.stands_at(tx, tx.latest()):
            raise Conflict("the projections are behind the log: catch up before taking the turn")
        return self.follower.sync()

    def commit(self, unit: UnitOfWork, also: Callable[[Transaction], None], *, pipelined: bool | None = None) -> None:
        """Store the unit's events, their projection and whatever `also` writes, in ONE transaction.

        `also` runs first, under the write lock: it may also record the unit's events (see
        `follow_in`). Raises `Conflict` (nothing stored; the caller discards the unit and resolves again).
        """
        if pipelined is None:
            pipelined = len(unit.events) < COPY_FROM
        with self.writer.transaction(pipelined=pipelined) as tx:
            self.check_forgets(tx)
            also(tx)
            facts = unit.commit(tx)
            first, last = unit.span
            projected = bool(last) and self.runner.apply_in(tx, facts, first, last)
        unit.committed()
        if last:
            self.stored(first, last, projected)

    def stored(self, first: int, last: int, projected: bool) -> None:
        """A transaction of ours stored positions first..last: the follower and the read side move on.

        The writer keeps the read side current: if the transaction could not project its facts
        (the projections stood behind it), the catch-up happens here, on the writer's path.
        """
        self.follower.stored(first, last)
        if projected:
            self.runner.moved_to(last)
        elif self.runner.position < last:
            self.follower.sync()

    def close(self) -> None:
        self.writer.close()
        self.log.close()
        self.writers.close()
