"""Storing a batch of validated requests: resolve every call, then ONE transaction.

The transaction holds the log rows, the insert-ID receipts, the projections' rows and
their tracking position, and the stream markers of requests that carry one
(`WriteContext.commit`). Conflicts (another writer got there first) roll it all back; the
batch is resolved again on fresh state (`in_fresh_units`).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from ledger.domain.calls import Accepted, IngestWarning
from ledger.domain.model import RuleViolation
from ledger.domain.requests import resolve_request
from ledger.store.unit_of_work import UnitOfWork
from ledger.store.writer import Conflict, Transaction
from ledger.write_context import WriteContext, in_fresh_units
from projections.collection import collection_paused


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
    """Stores batches of requests for one ledger, through its write context."""

    def __init__(self, context: WriteContext, dedup_window_ms: int) -> None:
        self._context = context
        self._dedup_window_ms = dedup_window_ms

    def store(self, batch: list[Request]) -> list[IngestReport]:
        with collection_paused():
            return self._store(batch)

    def _store(self, batch: list[Request]) -> list[IngestReport]:
        violated_at: int | None = None
        context = self._context

        def attempt(unit: UnitOfWork) -> list[IngestReport]:
            nonlocal violated_at
            context.follower.sync()
            markers = context.log.applied() if any(request.applied for request in batch) else {}
            warnings: list[list[IngestWarning]] = [list(request.accepted.warnings) for request in batch]
            try:
                duplicates, marks = self._resolve(batch, unit, markers, warnings)
            except RuleViolation:
                # A cached aggregate may have met a fresher one mid-request: try once more on
                # reloaded state. Broken again with no other write in between, it is a bug: raise it.
                if violated_at == context.follower.seen:
                    raise
                violated_at = context.follower.seen
                raise Conflict("a rule broke on cached state: resolve again on reloaded state") from None

            def mark(tx: Transaction) -> None:
                for stream, sequence in marks.items():
                    tx.mark_applied(stream, sequence, markers.get(stream))

            context.commit(unit, mark)
            return [IngestReport(ingested=len(request.accepted.calls) - dropped, duplicates=dropped,
                                 position=context.follower.seen, server_time=request.server_time,
                                 warnings=sorted(found, key=lambda warning: warning.index))
                    for request, dropped, found in zip(batch, duplicates, warnings, strict=True)]

        return in_fresh_units(context.cache, batch[-1].server_time, attempt)

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
