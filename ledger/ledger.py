"""IdentityLedger: the application service. One request in, every call resolved, one atomic commit.

The jobs live in their own modules: `write_context` (the write side, opened once, and its
one-transaction commit), the use cases that take it (`ingesting`, `correcting`, `deleting`,
`mapping`), `group_commit` (requests queued meanwhile share a commit), `following` (other
writers), `projections.queries.ReadModel` (the read model, held here and by each `as_of` view:
`reads`) and `projections.runner` (catch-up and rebuild). This module wires them together.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.cached_resolve import resolve_from_cache
from ledger.correcting import Corrector
from ledger.deleting import Deletions, JobRun
from ledger.domain.calls import DEFAULT_MIN_ID_LENGTH, Accepted, accept
from ledger.domain.group_identify import accept_identifications
from ledger.domain.model import DEFAULT_DEDUP_WINDOW_MS, MAX_DEDUP_WINDOW_MS
from ledger.errors import LedgerError, ReadAbandoned
from ledger.group_commit import GroupCommit
from ledger.history.changes import ChangePage, changes
from ledger.history.replaying import Replayed, replay
from ledger.history.writing import history as exported_history
from ledger.ingesting import Ingester, IngestReport, Request
from ledger.mapping import Mapper, MappingReport
from ledger.reads import AnswersFromReadModel, LedgerView
from ledger.store import scratch as scratch_copies
from ledger.store.aggregate_cache import DEFAULT_CACHE_SIZE
from ledger.store.database import open_store, refuse_a_missing_file
from ledger.store.key_file import key_path, new_keys
from ledger.store.rekeying import rekey
from ledger.store.writer import RECEIPTS
from ledger.store.writer_lock import setup_lock
from ledger.time_travel import AsOf, past_position
from ledger.write_context import WriteContext
from projections.models import Correction, Identity
from projections.queries import Reading, ReadModel, check_one_of
from projections.runner import ProgressCallback

__all__ = ["Diagnostics", "IdentityLedger", "IngestReport", "JobRun", "LedgerView"]


@dataclass(frozen=True)
class Diagnostics:
    """What an operator (`/metrics`, `ledger status`) or a test may look at without reaching into the ledger."""

    #: "sqlite" or "postgresql".
    backend: str
    #: The log's last position, as this process last looked.
    position: int
    #: The position the read side (the projection tables) stands at.
    read_position: int
    #: Whether stored keys are keyed by the ledger's secret (False: a ledger written before keyed IDs).
    keyed: bool
    #: The log's table (eventsourcing's stored events).
    events_table: str

    @property
    def lag(self) -> int:
        """Log positions the read side has not applied yet."""
        return self.position - self.read_position


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class IdentityLedger(AnswersFromReadModel):
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
        key_file: str | None = None,
    ) -> None:
        if not 0 <= dedup_window_ms <= MAX_DEDUP_WINDOW_MS:
            raise ValueError("dedup_window_ms must be between 0 and 30 days")
        if not create:
            refuse_a_missing_file(url)  # before setup_lock makes its lock file beside it
        with setup_lock(url):  # schema setup is serialized across processes
            store = open_store(url, create=create)
            try:
                self._context = WriteContext.open(store, cache_size=cache_size, clock=clock, key_file=key_file)
            except BaseException:  # a refused open (newer schema, file replaced) leaks nothing
                store.close()
                raise
        self._store = store
        self._key_file = key_file
        self._ingester = Ingester(self._context, dedup_window_ms)
        self._commits: GroupCommit[Request, IngestReport] = GroupCommit(self._ingester.store, self._context.lock)
        self._deletions = Deletions(self._context)
        self._corrector = Corrector(self._context)
        self._mapper = Mapper(self._context)
        self.read_model = ReadModel(self._live_reading)
        self._context.runner.catch_up(self._context.follower.seen)
        scratch_copies.remove_stale()  # a crashed process's as_of copies hold personal data

    @property
    def url(self) -> str:
        return self._store.url

    @property
    def key_file(self) -> str:
        """Where this ledger's secret is: it must be kept and backed up with the ledger, never shared."""
        return key_path(self._store, self._key_file)

    # -- writing -------------------------------------------------------------------

    def ingest(self, events: Iterable[Any], min_id_length: int = DEFAULT_MIN_ID_LENGTH, *,
               applied: tuple[str, int] | None = None, server_time: int | None = None) -> IngestReport:
        """Store a request of Amplitude HTTP V2 events atomically, or raise InvalidRequest.

        `applied=(stream, sequence)` stores that marker in the same transaction (see `applied`);
        a request whose sequence is not past the stream's stored one is not stored again
        (its report counts every call as a duplicate). `server_time` is the upload time to
        record instead of now: a replayed history's (`replay`).
        """
        stamp = self._context.clock() if server_time is None else server_time
        return self._submit(lambda: accept(events, server_time=stamp, min_id_length=min_id_length), stamp, applied)

    def identify(self, identifications: Iterable[Any], min_id_length: int = DEFAULT_MIN_ID_LENGTH, *,
                 applied: tuple[str, int] | None = None) -> IngestReport:
        """Store Identify API objects (user_id / device_id / user_properties); no event is counted."""
        stamp = self._context.clock()
        return self._submit(lambda: accept(identifications, server_time=stamp, min_id_length=min_id_length,
                                           identify=True), stamp, applied)

    def group_identify(self, identifications: Iterable[Any], *, server_time: int | None = None) -> IngestReport:
        """Store Group Identify API objects (`group_type`, `group_value`, `group_properties`): each
        applies its operations to its group's properties; no person is touched, no event counted.
        `server_time`: as for `ingest`."""
        stamp = self._context.clock() if server_time is None else server_time
        return self._submit(lambda: accept_identifications(identifications, stamp), stamp)

    def _submit(self, accepting: Callable[[], Accepted], server_time: int,
                applied: tuple[str, int] | None = None) -> IngestReport:
        """Validate a request (`accepting`) inside the group commit, so a leader knows it is on its
        way (`ledger.group_commit`), then store it with its commit."""

        def prepare() -> tuple[Request, int]:
            accepted = accepting()
            return Request(accepted, server_time, applied), len(accepted.calls)

        return self._commits.submit(prepare)

    def map_users(self, mappings: Iterable[Any], *, requester: str = "library",
                  server_time: int | None = None) -> MappingReport:
        """Apply User Mapping API objects in order (`{"user_id", "global_user_id"}` or `{"user_id",
        "unmap": true}`) as one audited request; raises InvalidRequest naming the items at fault.
        `server_time`: as for `ingest`."""
        with self._context.lock:
            return self._mapper.apply(mappings, requester, self._context.clock() if server_time is None else server_time)

    def map_user(self, user_id: str, global_user_id: str, *, requester: str = "library") -> MappingReport:
        """Count `user_id` as `global_user_id` until unmapped (docs/rules.md, User mapping)."""
        return self.map_users([{"user_id": user_id, "global_user_id": global_user_id}], requester=requester)

    def unmap_user(self, user_id: str, *, requester: str = "library") -> MappingReport:
        """Undo `user_id`'s mapping: everything answers again as before it was mapped."""
        return self.map_users([{"user_id": user_id, "unmap": True}], requester=requester)

    def store_accepted(self, requests: Sequence[Request]) -> list[IngestReport]:
        """Store requests validated elsewhere, in order and in ONE transaction, each with its
        `applied` marker: the buffered writer (`ledger apply`) commits a fetched batch at once."""
        with self._context.lock:
            return self._ingester.store(list(requests))

    def retract_user_id(self, user_id: str, *, reason: str, requester: str = "library",
                        server_time: int | None = None) -> Correction:
        """Retract a user ID as an audited correction (docs/corrections.md); raises CorrectionRefused.

        From now on the ledger treats it as never sent: every call that carried it is re-resolved
        as the same call without it, and so is every call whose resolution depended on it; later
        calls carrying it are stored without it (with a warning). Nothing stored is rewritten.
        """
        with self._context.lock:
            return self._corrector.retract(user_id, reason, requester,
                                           self._context.clock() if server_time is None else server_time)

    def applied(self, stream: str) -> int | None:
        """The sequence of the last message from `stream` stored with `ingest(..., applied=...)`."""
        return self._context.log.applied().get(stream)

    def replay(self, records: Iterable[dict[str, Any]]) -> Replayed:
        """Store an exported history's records (`export`) so that this ledger holds the same people."""
        return replay(self, records)

    # -- forgetting (docs/privacy.md) -------------------------------------------------

    def forget(self, *, user_ids: Iterable[str] = (), amplitude_ids: Iterable[int] = (), requester: str,
               ignore_invalid_id: bool = False, now: bool = False) -> dict[str, Any]:
        """Ask for people to be forgotten (at most 100 IDs); returns the deletion job, Amplitude's shape.

        User IDs are resolved to amplitude IDs now (a job stores none). The job runs on its day
        (`run_deletions`), the next UTC day; with `now=True` it runs at once. Unknown IDs raise
        DeletionRefused unless `ignore_invalid_id`.
        """
        return self._deletions.request(amplitude_ids, user_ids, requester, ignore_invalid_id=ignore_invalid_id,
                                       now=now)

    def withdraw_deletion(self, amplitude_id: int, day: dt.date) -> dict[str, Any]:
        """Take an amplitude ID out of the job of `day` before it runs; returns the job."""
        return self._deletions.withdraw(amplitude_id, day)

    def deletions(self, start_day: dt.date, end_day: dt.date) -> list[dict[str, Any]]:
        """The deletion jobs of start_day..end_day (at most six months), Amplitude's shape."""
        return [job.answer() for job in self._deletions.jobs(start_day, end_day)]

    def run_deletions(self) -> list[JobRun]:
        """Run every deletion job whose day has come (for cron: `ledger deletions --run`)."""
        return self._deletions.run_due()

    def rekey(self) -> int:
        """Give a ledger written before keyed IDs its secret (a new key file) and rewrite its stored
        keys in one transaction; needs the ledger to itself. Returns how many streams got a new ID."""
        if self._context.cache.keys.keyed:
            raise LedgerError("this ledger's stored keys are already keyed by its secret")
        with self._context.lock, self._context.writers.exclusive("rekey"):
            keys = new_keys(self._store, self._key_file)
            events = self._context.events_table
            with self._context.writer.transaction() as tx:
                moved = rekey(tx, keys, events)
                erased_in = tx.erasing()
            self._context.cache.clear()
            self._context.cache.use_keys(keys)
            self._context.writer.reclaim([events, RECEIPTS], erased_in)
            return moved

    # -- reading (the questions are `ReadModel`'s: `ledger.reads`) ------------------

    def _live_reading(self) -> Reading:
        """The live tables and the log up to its end; follows other writers' changes without writing."""
        return Reading(self._store.read_engine, self._context.log, self.position)

    def resolve(self, *, device_id: str | None = None, user_id: str | None = None) -> Identity | None:
        """Who a device ID's next anonymous event goes to, or whom a user ID is bound to.

        Answered from the write side's cache (`ledger.cached_resolve`): the read model's answer
        without SQL for a known device or user.
        """
        check_one_of(device_id, user_id)
        with self._context.lock:
            self._context.follower.follow()
            return resolve_from_cache(self._context.cache, device_id, user_id)

    @property
    def position(self) -> int:
        """The ledger position: the notification ID of the last stored event (a read: it writes nothing)."""
        with self._context.lock:
            return self._context.follower.follow()

    def catch_up(self) -> int:
        """Apply to the read side whatever the log holds beyond it; returns the position it stands at.

        Reads never write: the writer keeps the read side current (each request is projected in
        its own transaction; one that could not be catches up right after its commit; opening the
        ledger catches up). Call this after a rebuild that was interrupted, or when `lag()` says so.
        """
        with self._context.lock:
            return self._context.follower.sync()

    def export(self, *, after: int = 0, as_of: int | None = None) -> Iterator[dict[str, Any]]:
        """The history after position `after` up to `as_of` (default: now) as records, in ledger order
        (docs/export.md): every call as received, every correction and deletion; read a page at a time."""
        if after < 0 or (as_of is not None and as_of < 0):
            raise ValueError("positions must be >= 0")
        latest = self.position
        return exported_history(self._context.log, after=after, stop=latest if as_of is None else min(as_of, latest))

    def changes(self, after: int = 0, limit: int = 1000) -> ChangePage:
        """The identity facts after position `after` (at most `limit`), and the position to ask after next."""
        if after < 0 or limit < 1:
            raise ValueError("after must be >= 0 and limit >= 1")
        return changes(self._context.log, self._context.cache.keys, after=after, stop=self.position, limit=limit)

    def lag(self) -> int:
        """How many log positions the read side (the projection tables, shared by every process) stands
        behind the log: 0 unless a writer stopped between a commit and its catch-up (see `catch_up`).
        It never triggers a catch-up, so a scrape of `/metrics` writes nothing."""
        return self.diagnostics().lag

    def diagnostics(self) -> Diagnostics:
        """The ledger's vital signs (backend, positions, keys), read without side effects."""
        return Diagnostics(
            backend=self._store.backend.name,
            position=self._context.log.latest(),
            read_position=self._context.runner.stored_position(),
            keyed=self._context.cache.keys.keyed,
            events_table=self._context.events_table,
        )

    # -- replay --------------------------------------------------------------------

    def as_of(self, as_of: AsOf, cancelled: threading.Event | None = None) -> LedgerView:
        """A read-only view of the ledger as it stood at a position, or at an aware datetime (the state
        after the last call stored at or before it, by server time).

        Answers come from the history tables kept beside the live ones (index lookups on
        `valid_from <= position < valid_to`) and the log up to the position: opening a view costs
        no replay, whatever the log's length. A position past the end, a time in the future or
        without a time zone raise OutsideTheLedger. A reader that has gone (`cancelled` set) gets
        ReadAbandoned instead of a view.
        """
        position = past_position(as_of, self.position, self._context.clock(), self._context.log)
        if cancelled is not None and cancelled.is_set():
            raise ReadAbandoned("the reader went away")
        return LedgerView(self._store.read_engine, self._context.log, position)

    def rebuild(self, progress: ProgressCallback | None = None) -> int:
        """Drop the projections and replay the log's identity facts from position 0; returns the position.

        Tracked events are not replayed: the timelines are the log's own index.
        """
        with self._context.lock, self._context.writers.exclusive("rebuild"):  # never beside another writer
            return self._context.runner.rebuild(self._context.log.latest(), progress)

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        self._context.close()
        self._store.close()

    def __enter__(self) -> IdentityLedger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
