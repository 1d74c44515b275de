"""Storing a batch of validated requests: resolve every call, then ONE transaction.

The transaction holds the log rows, the insert-ID receipts, the projections' rows and
their tracking position, and the stream markers of requests that carry one. Conflicts
(another writer got there first) roll it all back; the batch is resolved again on
fresh state, up to `MAX_ATTEMPTS` times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import msgspec

from ledger.domain.calls import Accepted, IngestWarning
from ledger.domain.model import RuleViolation
from ledger.domain.requests import resolve_request
from ledger.errors import ConflictRetriesExhausted
from ledger.following import LogFollower
from ledger.store import settings
from ledger.store.event_log import EventLog
from ledger.store.unit_of_work import AggregateCache, UnitOfWork
from ledger.store.writer import COPY_FROM, Conflict, Transaction, Writer
from projections.collection import collection_paused
from projections.runner import ProjectionRunner

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


class IngestReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one request did: calls stored, duplicates dropped, and the ledger position after it."""

    ingested: int
    duplicates: int
    position: int
    server_time: int
    warnings: list[IngestWarning] = []


@dataclass(frozen=True)
class Request:
    """A validated request; `applied` = (stream, sequence) of the message it came from, if any."""

    accepted: Accepted
    server_time: int
    applied: tuple[str, int] | None = None


class Ingester:
    """Stores batches of requests for one ledger."""

    def __init__(self, writer: Writer, log: EventLog, cache: AggregateCache, runner: ProjectionRunner,
                 follower: LogFollower, dedup_window_ms: int) -> None:
        self._writer = writer
        self._log = log
        self._cache = cache
        self._runner = runner
        self._follower = follower
        self._dedup_window_ms = dedup_window_ms
        #: Deletion jobs run so far, as this process last knew (`ledger.store.settings`).
        self.forgets = 0

    def store(self, batch: list[Request]) -> list[IngestReport]:
        with collection_paused():
            return self._store(batch)

    def _store(self, batch: list[Request]) -> list[IngestReport]:
        violated_at: int | None = None

        def attempt(unit: UnitOfWork) -> list[IngestReport]:
            nonlocal violated_at
            self._follower.sync()
            markers = self._log.applied() if any(request.applied for request in batch) else {}
            warnings: list[list[IngestWarning]] = [list(request.accepted.warnings) for request in batch]
            try:
                duplicates, marks = self._resolve(batch, unit, markers, warnings)
            except RuleViolation:
                # A cached aggregate may have met a fresher one mid-request: try once more on
                # reloaded state. Broken again with no other write in between, it is a bug: raise it.
                if violated_at == self._follower.seen:
                    raise
                violated_at = self._follower.seen
                raise Conflict("a rule broke on cached state: resolve again on reloaded state") from None

            def mark(tx: Transaction) -> None:
                for stream, sequence in marks.items():
                    tx.mark_applied(stream, sequence, markers.get(stream))

            self.commit(unit, mark)
            return [IngestReport(ingested=len(request.accepted.calls) - dropped, duplicates=dropped,
                                 position=self._follower.seen, server_time=request.server_time,
                                 warnings=sorted(found, key=lambda warning: warning.index))
                    for request, dropped, found in zip(batch, duplicates, warnings, strict=True)]

        return in_fresh_units(self._cache, batch[-1].server_time, attempt)

    def _check_forgets(self, tx: Transaction) -> None:
        """A deletion job that ran since this batch was resolved may have erased what it read: resolve again."""
        forgets = settings.forgets_in(tx)
        if forgets != self.forgets:
            self.forgets = forgets
            self._cache.clear()
            raise Conflict("a deletion job ran meanwhile")

    def follow_in(self, tx: Transaction) -> int:
        """Follow the log to its end from inside a write transaction; returns the position.

        The transaction holds the database's write lock: this is the writer's turn, and nothing
        is stored by anyone until it ends, so an operator action planned in it (a correction)
        cannot be overtaken by ingest from another process. Raises `Conflict` if the projections
        are behind the log: they catch up in transactions of their own, outside the turn.
        """
        if not self._runner.stands_at(tx, tx.latest()):
            raise Conflict("the projections are behind the log: catch up before taking the turn")
        return self._follower.sync()

    def commit(self, unit: UnitOfWork, also: Callable[[Transaction], None], *, pipelined: bool | None = None) -> None:
        """Store the unit's events, their projection and whatever `also` writes, in ONE transaction.

        `also` runs first, under the write lock: it may also record the unit's events (see
        `follow_in`). Raises `Conflict` (nothing stored; the caller discards the unit and resolves again).
        """
        if pipelined is None:
            pipelined = len(unit.events) < COPY_FROM
        with self._writer.transaction(pipelined=pipelined) as tx:
            self._check_forgets(tx)
            also(tx)
            facts = unit.commit(tx)
            first, last = unit.span
            projected = bool(last) and self._runner.apply_in(tx, facts, first, last)
        unit.committed()
        if last:
            self._follower.stored(first, last)
            if projected:
                self._runner.moved_to(last)
            elif self._runner.position < last:
                self._follower.sync()

    def _resolve(self, batch: list[Request], unit: UnitOfWork, markers: dict[str, int],
                 warnings: list[list[IngestWarning]]) -> tuple[list[int], dict[str, int]]:
        """Resolve every call of the batch; a request from a stream message already applied stores nothing."""
        unit.prefetch([call for request in batch for call in request.accepted.calls])
        duplicates: list[int] = []
        marks: dict[str, int] = {}
        for request in batch:
            if request.applied is not None:
                stream, sequence = request.applied
                if sequence <= marks.get(stream, markers.get(stream, -1)):
                    duplicates.append(len(request.accepted.calls))
                    continue
                marks[stream] = sequence
            duplicates.append(resolve_request(request.accepted.calls, request.server_time, unit,
                                              self._dedup_window_ms, warnings[len(duplicates)]))
        return duplicates, marks
