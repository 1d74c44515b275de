"""IdentityLedger: one request in, every call resolved, one atomic save, projections caught up."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Sequence
from uuid import UUID

import msgspec
import sqlalchemy as sa
from eventsourcing.persistence import IntegrityError

from ledger.buffer import position as _position  # noqa: F401 (registers the stored name of `Applied`)
from ledger.domain.calls import DEFAULT_MIN_ID_LENGTH, Accepted, IngestWarning, accept
from ledger.domain.model import DEFAULT_DEDUP_WINDOW_MS, MAX_DEDUP_WINDOW_MS, RuleViolation
from ledger.errors import ConflictRetriesExhausted
from ledger.store.event_log import EventLog
from ledger.domain.resolution import resolve_call
from ledger.store.database import open_store
from ledger.store.unit_of_work import DEFAULT_CACHE_SIZE, AggregateCache, UnitOfWork
from projections.models import AuditEntry, Identity, Merge, TimelineEvent
from projections.queries import ProjectionQueries
from projections.runner import ProgressCallback, ProjectionRunner

MAX_ATTEMPTS = 20
LOG_PAGE = 5000
#: Queued requests are stored together up to this many calls per transaction.
GROUP_COMMIT_CALLS = 10_000


class IngestReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one request did: calls stored, duplicates dropped, and the ledger position after it."""

    ingested: int
    duplicates: int
    position: int
    server_time: int
    warnings: list[IngestWarning] = []


class _Pending:
    """A validated request waiting for the writer, and then its report or its error."""

    __slots__ = ("accepted", "server_time", "facts", "outcome")

    def __init__(self, accepted: Accepted, server_time: int, facts: Sequence[Any] = ()) -> None:
        self.accepted = accepted
        self.server_time = server_time
        self.facts = facts
        self.outcome: IngestReport | BaseException | None = None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LedgerView:
    """Read-only answers from one set of projection tables (the live ones, or a past state)."""

    def __init__(self, queries: ProjectionQueries, position: int,
                 scratch: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self._queries = queries
        self.position = position
        self._scratch = scratch

    def resolve(self, *, device_id: str | None = None, user_id: str | None = None) -> Identity | None:
        _one_id(device_id, user_id)
        return self._queries.resolve(device_id=device_id, user_id=user_id)

    def timeline(self, amplitude_id: int, *, after: int = 0, limit: int | None = None,
                 newest_first: bool = False) -> list[TimelineEvent]:
        return self._queries.timeline(amplitude_id, after=after, limit=limit, newest_first=newest_first)

    def event_count(self, amplitude_id: int) -> int:
        return self._queries.event_count(amplitude_id)

    def merges(self) -> list[Merge]:
        return self._queries.merges()

    def audit(self, *, user_id: str | None = None, device_id: str | None = None,
              amplitude_id: int | None = None) -> list[AuditEntry]:
        if sum(value is not None for value in (user_id, device_id, amplitude_id)) != 1:
            raise ValueError("give exactly one of user_id, device_id, amplitude_id")
        return self._queries.audit(user_id=user_id, device_id=device_id, amplitude_id=amplitude_id)

    def identity(self, amplitude_id: int) -> Identity | None:
        """The person an amplitude ID (live or merged) belongs to."""
        return self._queries.identity(amplitude_id)

    def stats(self) -> dict[str, int]:
        return self._queries.stats()

    def events(self, *, after: int = 0, limit: int = 10_000) -> list[TimelineEvent]:
        """Every tracked event in ledger order, a page at a time (for exports)."""
        return self._queries.events(after=after, limit=limit)

    def close(self) -> None:
        """Release a past view's scratch database (the live view's engine belongs to the ledger)."""
        if self._scratch is not None:
            self._queries.engine.dispose()
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> LedgerView:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _one_id(device_id: str | None, user_id: str | None) -> None:
    if (device_id is None) == (user_id is None):
        raise ValueError("give exactly one of device_id, user_id")


class IdentityLedger:
    """The identity ledger on one database URL (default `sqlite:///ledger.db`).

    Thread-safe: requests are resolved one at a time per process; several processes
    may write to one PostgreSQL database (conflicts are detected by the store and the
    request is resolved again).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        dedup_window_ms: int = DEFAULT_DEDUP_WINDOW_MS,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], int] = _now_ms,
        create: bool = True,
    ) -> None:
        if not 0 <= dedup_window_ms <= MAX_DEDUP_WINDOW_MS:
            raise ValueError("dedup_window_ms must be between 0 and 30 days")
        self._store = open_store(url, create=create)
        self._app = self._store.app
        self._dedup_window_ms = dedup_window_ms
        self._clock = clock
        self._lock = threading.RLock()
        self._queue_lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._log = EventLog(self._store)
        self._cache = AggregateCache(self._log, cache_size)
        self._seen = self._log.latest()
        self._runner = ProjectionRunner(self._store.engine, self._log.read)
        self._live = LedgerView(ProjectionQueries(self._store.engine), self._seen)
        self._runner.catch_up(self._seen)

    @property
    def url(self) -> str:
        return self._store.url

    # -- the log ------------------------------------------------------------------

    def _sync(self) -> int:
        """Follow other writers: forget aggregates they changed, bring projections up to date."""
        latest = self._log.latest()
        if self._seen < latest:
            self._cache.forget_absent()
        while self._seen < latest:
            originators = self._log.originators(self._seen, latest, LOG_PAGE)
            if not originators:
                break
            self._cache.evict(originator_id for _, originator_id in originators)
            self._seen = originators[-1][0]
        self._seen = max(self._seen, latest)
        if self._runner.position < latest:
            self._runner.catch_up(latest)
        return latest

    # -- writing -------------------------------------------------------------------

    def ingest(self, events: Iterable[Any], min_id_length: int = DEFAULT_MIN_ID_LENGTH) -> IngestReport:
        """Store a request of Amplitude HTTP V2 events atomically, or raise InvalidRequest."""
        server_time = self._clock()
        return self._record(accept(events, server_time=server_time, min_id_length=min_id_length), server_time)

    def identify(self, identifications: Iterable[Any], min_id_length: int = DEFAULT_MIN_ID_LENGTH) -> IngestReport:
        """Store Identify API objects (user_id / device_id / user_properties); no event is counted."""
        server_time = self._clock()
        accepted = accept(identifications, server_time=server_time, min_id_length=min_id_length, identify=True)
        return self._record(accepted, server_time)

    def record(self, requests: Sequence[tuple[Accepted, int, Sequence[Any]]]) -> list[IngestReport]:
        """Store requests validated elsewhere, in order: (accepted, server_time, facts) each, the
        `facts` (events of other aggregates, e.g. the applied stream position) in the SAME
        transaction as their request: the hook for exactly-once apply."""
        return self._record_all([_Pending(*request) for request in requests])

    def last_fact(self, originator_id: UUID) -> Any | None:
        """The last stored event of one aggregate (for facts stored by `record`)."""
        return self._log.last_event(originator_id)

    def _record(self, accepted: Accepted, server_time: int) -> IngestReport:
        return self._record_all([_Pending(accepted, server_time)])[0]

    def _record_all(self, pending: list[_Pending]) -> list[IngestReport]:
        """Store validated requests; concurrent requests share one transaction (group commit).

        A commit waits for the disk (fsync); requests that queue up meanwhile are stored
        together by whichever thread gets the writer lock next. Each request is still
        all-or-nothing, and calls are resolved in queue order.
        """
        with self._queue_lock:
            self._queue.extend(pending)
        with self._lock:
            while pending and pending[-1].outcome is None:
                self._store_queued()
        for waiting in pending:
            if isinstance(waiting.outcome, BaseException):
                raise waiting.outcome
        return [waiting.outcome for waiting in pending]  # type: ignore[misc]

    def _store_queued(self) -> None:
        with self._queue_lock:
            batch: list[_Pending] = []
            calls = 0
            while self._queue and (not batch or calls + len(self._queue[0].accepted.calls) <= GROUP_COMMIT_CALLS):
                batch.append(self._queue.popleft())
                calls += len(batch[-1].accepted.calls)
        try:
            reports = self._store_batch(batch)
        except BaseException as error:
            for waiting in batch:
                waiting.outcome = error
            return
        for waiting, report in zip(batch, reports):
            waiting.outcome = report

    def _store_batch(self, batch: list[_Pending]) -> list[IngestReport]:
        for _ in range(MAX_ATTEMPTS):
            self._sync()
            unit = UnitOfWork(self._cache, self._app, batch[-1].server_time)
            duplicates: list[int] = []
            try:
                unit.prefetch([call for waiting in batch for call in waiting.accepted.calls])
                for waiting in batch:
                    stored = [resolve_call(call, waiting.server_time, unit, self._dedup_window_ms)
                              for call in waiting.accepted.calls]
                    duplicates.append(stored.count(False))
                    unit.events.extend(waiting.facts)
                pairs = unit.commit()
            except (IntegrityError, RuleViolation):
                # Another writer won a race: the store refused a stale version, or a
                # cached aggregate met a fresher one mid-request. Resolve again on fresh state.
                unit.discard()
                self._cache.forget_absent()
                continue
            except BaseException:
                unit.discard()
                raise
            self._project(pairs)
            return [
                IngestReport(
                    ingested=len(waiting.accepted.calls) - dropped,
                    duplicates=dropped,
                    position=self._seen,
                    server_time=waiting.server_time,
                    warnings=waiting.accepted.warnings,
                )
                for waiting, dropped in zip(batch, duplicates)
            ]
        raise ConflictRetriesExhausted(f"gave up after {MAX_ATTEMPTS} conflicting attempts")

    def _project(self, pairs: list[tuple[int, Any]]) -> None:
        """Bring the projections up to date with a request just stored (read-your-writes)."""
        if not pairs:
            return
        if pairs[0][0] == self._seen + 1:
            self._seen = pairs[-1][0]
        else:
            self._sync()
        if not self._runner.apply(pairs):
            self._runner.catch_up(self._seen)

    # -- reading -------------------------------------------------------------------

    def resolve(self, *, device_id: str | None = None, user_id: str | None = None) -> Identity | None:
        """Who a device ID's next anonymous event goes to, or whom a user ID is bound to."""
        _one_id(device_id, user_id)
        with self._lock:
            self._sync()
            if device_id is not None:
                device = self._cache.get(("device", device_id))
                amplitude_id = None if device is None else device.pointer
            else:
                user = self._cache.get(("user", user_id))
                amplitude_id = None if user is None else user.amplitude_id
            if amplitude_id is None:
                return None
            identity = self._cache.get(("identity", amplitude_id))
            return Identity(
                amplitude_id=identity.amplitude_id,
                user_id=identity.user_id,
                device_ids=list(identity.device_ids),
                merged_amplitude_ids=list(identity.merged_amplitude_ids),
                user_properties=dict(identity.user_properties),
            )

    def _view(self) -> LedgerView:
        with self._lock:
            self._live.position = self._sync()
        return self._live

    def timeline(self, amplitude_id: int, *, after: int = 0, limit: int | None = None,
                 newest_first: bool = False) -> list[TimelineEvent]:
        """Every tracked event of the person `amplitude_id` belongs to (merged IDs included)."""
        return self._view().timeline(amplitude_id, after=after, limit=limit, newest_first=newest_first)

    def event_count(self, amplitude_id: int) -> int:
        """How many tracked events the person `amplitude_id` belongs to has."""
        return self._view().event_count(amplitude_id)

    def merges(self) -> list[Merge]:
        return self._view().merges()

    def audit(self, *, user_id: str | None = None, device_id: str | None = None,
              amplitude_id: int | None = None) -> list[AuditEntry]:
        return self._view().audit(user_id=user_id, device_id=device_id, amplitude_id=amplitude_id)

    def identity(self, amplitude_id: int) -> Identity | None:
        return self._view().identity(amplitude_id)

    def stats(self) -> dict[str, int]:
        return self._view().stats()

    def events(self, *, after: int = 0, limit: int = 10_000) -> list[TimelineEvent]:
        """Every tracked event in ledger order, a page at a time."""
        return self._view().events(after=after, limit=limit)

    @property
    def position(self) -> int:
        """The ledger position: the notification ID of the last stored event."""
        with self._lock:
            return self._sync()

    # -- replay --------------------------------------------------------------------

    def as_of(self, position: int) -> LedgerView:
        """A read-only view of the ledger as it stood at `position`, replayed into a scratch database.

        The scratch database is a temporary SQLite file (memory stays bounded however long
        the log), deleted by the view's `close()`; use the view as a context manager.
        """
        if position < 0:
            raise ValueError("position must be >= 0")
        stop = min(position, self.position)
        scratch = tempfile.TemporaryDirectory(prefix="ledger-as-of-")
        engine = sa.create_engine(f"sqlite:///{scratch.name}/as_of.db", connect_args={"check_same_thread": False})
        try:
            ProjectionRunner(engine, self._log.read).catch_up(stop)
        except BaseException:
            engine.dispose()
            scratch.cleanup()
            raise
        return LedgerView(ProjectionQueries(engine), stop, scratch)

    def rebuild(self, progress: ProgressCallback | None = None) -> int:
        """Drop the projections and replay the whole log from position 0; returns the position reached."""
        with self._lock:
            return self._runner.rebuild(self._log.latest(), progress)

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        self._log.close()
        self._store.close()

    def __enter__(self) -> IdentityLedger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
