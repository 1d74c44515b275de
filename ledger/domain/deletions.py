"""Deletion jobs (Amplitude's User Privacy API, v1): who is to be forgotten, on which day, by whose request.

A job is one stream per day (`DeletionJob.stream(day)`): the day it becomes due. Requests add
amplitude IDs to it, a withdrawal takes one out while it is still staging, and `Ran` records
that it ran: which amplitude IDs were forgotten (the whole people: merged IDs included), when,
by whose request. No event of a job holds personal data of the people it forgets: user IDs are
resolved to amplitude IDs when they are requested.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.model import JournaledAggregate, register_topics

STAGING, DONE = "staging", "done"
#: The ledger's own statuses beside Amplitude's, so that `done` always means something was erased:
#: every amplitude ID was taken out before the job ran, or it had (or found) nothing to erase.
WITHDRAWN, EMPTY = "withdrawn", "empty"


class JobEntry:
    """One amplitude ID in a job: who asked, on which day, and whether it has run."""

    __slots__ = ("amplitude_id", "requested_on_day", "requester", "status")

    def __init__(self, amplitude_id: int, requester: str, requested_on_day: str) -> None:
        self.amplitude_id = amplitude_id
        self.requester = requester
        self.requested_on_day = requested_on_day
        self.status = STAGING


class DeletionJob(JournaledAggregate):
    """The deletion job of one day."""

    STORED_AS = "DeletionJob"
    #: The high 64 bits of job stream IDs ("deletion"): followers recognise a job by its stream alone.
    STREAM = 0x6465_6C65_7469_6F6E

    class Opened(Aggregate.Created):
        TOPIC = "DeletionJob.Opened"

        day: str

        def apply(self, job: DeletionJob) -> None:
            job.day = self.day

    class Requested(Aggregate.Event):
        """These amplitude IDs are to be forgotten when the job runs."""

        TOPIC = "DeletionJob.Requested"

        amplitude_ids: list[int]
        requester: str
        requested_on_day: str

        def apply(self, job: DeletionJob) -> None:
            for amplitude_id in self.amplitude_ids:
                job.entries[amplitude_id] = JobEntry(amplitude_id, self.requester, self.requested_on_day)

    class Withdrawn(Aggregate.Event):
        """An amplitude ID taken out of the job before it ran."""

        TOPIC = "DeletionJob.Withdrawn"

        amplitude_id: int

        def apply(self, job: DeletionJob) -> None:
            job.entries.pop(self.amplitude_id, None)
            job.withdrawn.append(self.amplitude_id)

    class Ran(Aggregate.Event):
        """The audited fact of a deletion: `requested` amplitude IDs ran; `forgotten` lists every
        amplitude ID of those people (merged ones included) that was erased, at `server_time`."""

        TOPIC = "DeletionJob.Ran"

        day: str
        requested: list[int]
        forgotten: list[int]
        requesters: list[str]
        server_time: int

        def apply(self, job: DeletionJob) -> None:
            for amplitude_id in self.requested:
                entry = job.entries.get(amplitude_id)
                if entry is not None:
                    entry.status = DONE
            job.forgotten.extend(self.forgotten)

    def __init__(self) -> None:
        super().__init__()
        self.day = ""
        self.entries: dict[int, JobEntry] = {}
        self.forgotten: list[int] = []
        self.withdrawn: list[int] = []

    @staticmethod
    def stream(day: dt.date) -> UUID:
        return UUID(int=(DeletionJob.STREAM << 64) | day.toordinal())  # the low 64 bits: the day

    @staticmethod
    def is_job_stream(stream: UUID) -> bool:
        return stream.int >> 64 == DeletionJob.STREAM

    @property
    def status(self) -> str:
        """Amplitude's job status: staging while an entry has not run, then done if the job erased
        anyone; withdrawn if every entry was taken out before it ran; else empty (the people it named
        had been forgotten by another job already). Derived from the stored events, whose shape is unchanged."""
        if self.staging():
            return STAGING
        if self.forgotten:
            return DONE
        return WITHDRAWN if self.withdrawn and not self.entries else EMPTY

    def staging(self) -> list[int]:
        return [entry.amplitude_id for entry in self.entries.values() if entry.status == STAGING]

    @classmethod
    def open(cls, day: dt.date, timestamp: dt.datetime) -> DeletionJob:
        job: DeletionJob = cls._create(cls.Opened, id=cls.stream(day), day=day.isoformat(), timestamp=timestamp)
        return job

    def request(self, amplitude_ids: list[int], requester: str, requested_on: dt.date,
                timestamp: dt.datetime) -> None:
        self.trigger_event(self.Requested, amplitude_ids=amplitude_ids, requester=requester,
                           requested_on_day=requested_on.isoformat(), timestamp=timestamp)

    def withdraw(self, amplitude_id: int, timestamp: dt.datetime) -> None:
        self.trigger_event(self.Withdrawn, amplitude_id=amplitude_id, timestamp=timestamp)

    def ran(self, requested: list[int], forgotten: list[int], server_time: int, timestamp: dt.datetime) -> None:
        requesters = sorted({self.entries[amplitude_id].requester for amplitude_id in requested})
        self.trigger_event(self.Ran, day=self.day, requested=requested, forgotten=forgotten, requesters=requesters,
                           server_time=server_time, timestamp=timestamp)

    def answer(self) -> dict[str, Any]:
        """The job in Amplitude's reply shape."""
        return {"day": self.day, "status": self.status,
                "amplitude_ids": [{"amplitude_id": entry.amplitude_id, "requester": entry.requester,
                                   "requested_on_day": entry.requested_on_day} for entry in self.entries.values()]}


register_topics(DeletionJob)
