"""Deletion jobs: forgetting people on request (Amplitude's User Privacy API, v1), on the writer's path.

A request resolves its user IDs to amplitude IDs at once (a job stores no user ID) and adds
them to the job of the next UTC day (`DELAY_DAYS`), which can be withdrawn from until it runs.
`run_due` (`ledger deletions --run`, from cron) runs every job whose day has come; `now=True`
puts the IDs in today's job and runs it at once. Running a job is ONE write transaction: the
erasure of the log (`ledger.store.erasure`), the `Ran` fact, and the projections' rows; then
the process's cache is dropped, and the disk is made to forget (`Writer.reclaim`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from ledger.domain.deletions import EMPTY, DeletionJob
from ledger.errors import ConflictRetriesExhausted, DeletionRefused
from ledger.store import scratch, settings
from ledger.store.database import MsgspecMapper
from ledger.store.erasure import Erased, Eraser
from ledger.store.writer import RECEIPTS, Conflict, Row, Transaction
from ledger.write_context import MAX_ATTEMPTS, WriteContext
from projections import tables as t
from projections.erasure import attributions, erase_rows
from projections.runner import Fact

#: A request joins the job of this many days later (UTC): until then it can be withdrawn.
DELAY_DAYS = 1
MAX_IDS = 100
#: How often `ledger serve` runs due jobs unless told otherwise (seconds).
RUN_DUE_EVERY = 3600
#: Amplitude lists at most six months of jobs at a time.
MAX_LIST_DAYS = 183
MAX_REQUESTER = 1024
_mapper = MsgspecMapper(transcoder=None)  # type: ignore[arg-type]  # it encodes with msgspec itself


@dataclass(frozen=True)
class JobRun:
    """One job run: its day, every amplitude ID it erased, and whether the disk was made to forget."""

    day: str
    amplitude_ids: list[int]
    reclaimed: bool


def day_of(milliseconds: int) -> dt.date:
    return dt.datetime.fromtimestamp(milliseconds / 1000, dt.UTC).date()


def _timestamp(milliseconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(milliseconds / 1000, dt.UTC)


class Deletions:
    """The deletion jobs of one ledger; every method runs under the ledger's writer lock."""

    def __init__(self, context: WriteContext) -> None:
        self._context = context

    # -- requests ------------------------------------------------------------------

    def request(self, amplitude_ids: Iterable[Any], user_ids: Iterable[Any], requester: Any, *,
                ignore_invalid_id: bool = False, now: bool = False) -> dict[str, Any]:
        """Add people to a job; returns the job with this request's entries (Amplitude's reply)."""
        amplitude_ids, user_ids = list(amplitude_ids), list(user_ids)
        _check_request(amplitude_ids, user_ids, requester)
        with self._context.lock:
            self._context.follower.sync()
            wanted, unknown_ids, unknown_users = self._known(amplitude_ids, user_ids)
            if (unknown_ids or unknown_users) and not ignore_invalid_id:
                raise DeletionRefused.unknown_ids(unknown_ids, unknown_users)
            server_time = self._context.clock()
            today = day_of(server_time)
            day = today if now else today + dt.timedelta(days=DELAY_DAYS)
            if wanted:
                self._append(day, lambda job: job.request(wanted, requester, today, _timestamp(server_time)))
            job = self.job(day)
            if now:
                self.run(day)
                job = self.job(day)
        answer: dict[str, Any] = job.answer() if job is not None else {  # every ID unknown, and ignored
            "day": day.isoformat(), "status": EMPTY, "amplitude_ids": []}
        answer["amplitude_ids"] = [entry for entry in answer["amplitude_ids"] if entry["amplitude_id"] in wanted]
        return answer

    def _known(self, amplitude_ids: list[int], user_ids: list[str]) -> tuple[list[int], list[int], list[str]]:
        """The amplitude IDs to forget (user IDs resolved), and the IDs nobody has."""
        wanted: list[int] = []
        unknown_ids = []
        for amplitude_id in amplitude_ids:
            identity = self._context.cache.get(("identity", amplitude_id))
            if identity is None or identity.forgotten or identity.retired:  # a retired ID is nobody's now
                unknown_ids.append(amplitude_id)
            elif amplitude_id not in wanted:
                wanted.append(amplitude_id)
        unknown_users = []
        for user_id in user_ids:
            user = self._context.cache.get(("user", user_id))
            if user is None or user.retracted:  # a retracted user ID is nobody's now, as a retired amplitude ID
                unknown_users.append(user_id)
            elif user.amplitude_id not in wanted:
                wanted.append(user.amplitude_id)
        return wanted, unknown_ids, unknown_users

    def withdraw(self, amplitude_id: int, day: dt.date) -> dict[str, Any]:
        """Take an amplitude ID out of a job that has not run; returns the job."""
        with self._context.lock:
            self._context.follower.sync()
            job = self.job(day)
            if job is None or amplitude_id not in job.staging():
                raise DeletionRefused.because(f"amplitude ID {amplitude_id} is not waiting in the job of {day}")
            self._append(day, lambda job: job.withdraw(amplitude_id, _timestamp(self._context.clock())))
            found = self.job(day)
            assert found is not None
            return found.answer()

    # -- listing -------------------------------------------------------------------

    def job(self, day: dt.date) -> DeletionJob | None:
        stream = DeletionJob.stream(day)
        job: DeletionJob | None = None
        for event in self._context.log.events_by_aggregate([stream]).get(stream, []):
            job = event.mutate(job)
        return job

    def jobs(self, start: dt.date, end: dt.date) -> list[DeletionJob]:
        """The jobs of the days start..end (both included), oldest first."""
        if end < start or (end - start).days >= MAX_LIST_DAYS:
            raise DeletionRefused.because(f"end_day must be from start_day to {MAX_LIST_DAYS - 1} days after it")
        streams = [DeletionJob.stream(start + dt.timedelta(days=n)) for n in range((end - start).days + 1)]
        found = self._context.log.events_by_aggregate(streams)
        jobs = []
        for stream in streams:
            job: DeletionJob | None = None
            for event in found.get(stream, []):
                job = event.mutate(job)
            if job is not None:
                jobs.append(job)
        return jobs

    # -- running -------------------------------------------------------------------

    def run_due(self) -> list[JobRun]:
        """Run every job still staging whose day has come (oldest first)."""
        today = day_of(self._context.clock())
        with self._context.lock:
            self._context.follower.sync()
            due = [job for job in self.jobs(today - dt.timedelta(days=MAX_LIST_DAYS - 1), today) if job.staging()]
            return [run for run in (self.run(dt.date.fromisoformat(job.day)) for job in due) if run is not None]

    def run(self, day: dt.date) -> JobRun | None:
        """Run the job of `day` now: forget every person still staging in it, in ONE transaction."""
        with self._context.lock:
            for _ in range(MAX_ATTEMPTS):
                self._context.follower.sync()
                job = self.job(day)
                if job is None or not job.staging():
                    return None
                try:
                    erased, first, last, erased_in = self._erase(job)
                except Conflict:
                    continue
                self._context.cache.clear()
                self._context.stored(first, last, projected=True)
                tables = [self._context.events_table, RECEIPTS, *(table.name for table in t.PROJECTION_TABLES)]
                scratch.remove_stale()  # copies a crash left behind may hold the people just forgotten
                return JobRun(job.day, erased.amplitude_ids, self._context.writer.reclaim(tables, erased_in))
        raise ConflictRetriesExhausted(f"gave up running the deletion job of {day} after {MAX_ATTEMPTS} attempts")

    def _erase(self, job: DeletionJob) -> tuple[Erased, int, int, str | None]:
        server_time = self._context.clock()
        with self._context.writer.transaction() as tx:
            end = tx.latest()
            erased = Eraser(tx, self._context.cache.keys, self._context.events_table,
                            attributions).erase(job.staging(), job.day)
            job.ran(job.staging(), erased.amplitude_ids, server_time, _timestamp(server_time))
            facts, first, last = self._insert(tx, job, after=end)
            erase_rows(tx, erased.amplitude_ids, erased.devices, erased.redacted, erased.unbound)
            if not self._context.runner.apply_in(tx, facts, first, last):
                raise Conflict("the projections are behind the log: catch up first")
            self._context.forgets = settings.count_forget(tx)
            erased_in = tx.erasing()
        return erased, first, last, erased_in

    def _append(self, day: dt.date, change: Callable[[DeletionJob], None]) -> None:
        """Store one change to the job of `day` (opening it if need be), retrying conflicts."""
        for _ in range(MAX_ATTEMPTS):
            job = self.job(day) or DeletionJob.open(day, _timestamp(self._context.clock()))
            change(job)
            try:
                with self._context.writer.transaction() as tx:
                    facts, first, last = self._insert(tx, job)
                    projected = self._context.runner.apply_in(tx, facts, first, last)
            except Conflict:
                self._context.follower.sync()
                continue
            self._context.stored(first, last, projected)
            return
        raise ConflictRetriesExhausted(f"gave up storing the deletion job of {day} after {MAX_ATTEMPTS} attempts")

    def _insert(self, tx: Transaction, job: DeletionJob, after: int = 0) -> tuple[list[Fact], int, int]:
        """Append the job's pending events (past `after`, the log's end before an erasure); returns them
        as facts for the read side, and their positions."""
        events = job.collect_events()
        rows: list[Row] = []
        for event in events:
            stored = _mapper.to_stored_event(event)
            rows.append((cast(UUID, stored.originator_id), stored.originator_version, stored.topic, stored.state))
        positions = tx.insert_events(rows, after)
        facts = [(position, row[2], event.__dict__) for position, row, event in zip(positions, rows, events, strict=True)]
        return facts, positions[0], positions[-1]


def _check_request(amplitude_ids: list[Any], user_ids: list[Any], requester: Any) -> None:
    """The request's shape, or a 400 that names what is wrong."""
    bad_ids = [index for index, value in enumerate(amplitude_ids)
               if type(value) is not int or not 0 < value < 2**63]
    if bad_ids:
        raise DeletionRefused.because("amplitude_ids must be whole numbers from 1 to 2^63-1", invalid_indices=bad_ids)
    bad_users = [index for index, value in enumerate(user_ids)
                 if not isinstance(value, str) or not value or "\x00" in value or len(value) > 1024]
    if bad_users:
        raise DeletionRefused.because("user_ids must be non-empty strings of at most 1024 characters without NUL",
                                      invalid_indices=bad_users)
    if not amplitude_ids and not user_ids:
        raise DeletionRefused.because("give amplitude_ids or user_ids")
    if len(amplitude_ids) + len(user_ids) > MAX_IDS:
        raise DeletionRefused.because(f"at most {MAX_IDS} IDs per request, got {len(amplitude_ids) + len(user_ids)}")
    if not isinstance(requester, str) or not requester.strip() or "\x00" in requester \
            or len(requester) > MAX_REQUESTER:
        raise DeletionRefused.because(f"requester must be a non-empty string of at most {MAX_REQUESTER} characters "
                                      "without NUL")
