"""The read API of the ledger and of its past views: every question handed to the `ReadModel` they hold.

`projections.queries.ReadModel` answers; `IdentityLedger` (the live tables and the log up to
its position) and `LedgerView` (the same tables as they stood at a past position) each hold
one and ask it, so the live ledger, `as_of` and the HTTP API (which asks either) give the
same answers the same way. The one exception is the live `resolve`, answered from the write
side's cache for speed (`ledger.cached_resolve`, proven equal by a test).
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger.store.event_log import EventLog
from projections import history
from projections.models import (
    AuditEntry,
    Correction,
    Explanation,
    Group,
    Identity,
    MappingEntry,
    Merge,
    Stats,
    TimelineEvent,
)
from projections.queries import Reading, ReadModel


class AnswersFromReadModel:
    """Delegates each read question to `read_model` (see `ReadModel` for what each answers)."""

    read_model: ReadModel

    def resolve(self, *, device_id: str | None = None, user_id: str | None = None) -> Identity | None:
        """Who a device ID's next anonymous event goes to, or whom a user ID is bound to."""
        return self.read_model.resolve(device_id=device_id, user_id=user_id)

    def identity(self, amplitude_id: int) -> Identity | None:
        """The person an amplitude ID (live or merged) belongs to; None if never created or forgotten."""
        return self.read_model.identity(amplitude_id)

    def is_forgotten(self, amplitude_id: int) -> bool:
        """Whether a deletion job erased this amplitude ID."""
        return self.read_model.is_forgotten(amplitude_id)

    def timeline(self, amplitude_id: int, *, after: int = 0, limit: int | None = None,
                 newest_first: bool = False) -> list[TimelineEvent]:
        """Every tracked event of the person `amplitude_id` belongs to, after `after`."""
        return self.read_model.timeline(amplitude_id, after=after, limit=limit, newest_first=newest_first)

    def event_count(self, amplitude_id: int) -> int:
        """How many tracked events the person `amplitude_id` belongs to has."""
        return self.read_model.event_count(amplitude_id)

    def events(self, *, after: int = 0, limit: int = 10_000) -> list[TimelineEvent]:
        """Every tracked event in ledger order, a page at a time (for exports)."""
        return self.read_model.events(after=after, limit=limit)

    def merges(self) -> list[Merge]:
        """Amplitude's merged-users table (a merge a correction undid stays listed, with when)."""
        return self.read_model.merges()

    def corrections(self) -> list[Correction]:
        """Every correction (retracted user ID), in ledger order."""
        return self.read_model.corrections()

    def audit(self, *, user_id: str | None = None, device_id: str | None = None,
              amplitude_id: int | None = None) -> list[AuditEntry]:
        """Identity facts in ledger order: of one device, or of one person (all their amplitude IDs)."""
        return self.read_model.audit(user_id=user_id, device_id=device_id, amplitude_id=amplitude_id)

    def group(self, group_type: str, group_value: str) -> Group | None:
        """A group: its properties now, and every amplitude ID that joined it, when."""
        return self.read_model.group(group_type, group_value)

    def mappings(self, user_id: str | None = None) -> list[MappingEntry]:
        """Every mapping and unmapping in ledger order: all, or those naming `user_id`."""
        return self.read_model.mappings(user_id)

    def explain(self, position: int) -> Explanation | None:
        """Why the tracked event at `position` belongs to its person (None: no tracked event there)."""
        return self.read_model.explain(position)

    def stats(self) -> Stats:
        """Counts over the whole ledger."""
        return self.read_model.stats()


class LedgerView(AnswersFromReadModel):
    """Read-only answers as the ledger stood at `position`: the live database's history tables
    (`projections.history`) and its log up to `position`, so it costs index lookups, not a replay."""

    def __init__(self, engine: sa.Engine, log: EventLog, position: int) -> None:
        reading = Reading(engine, log, position, history.at(position))
        self.read_model = ReadModel(lambda: reading)
        self.position = position

    def close(self) -> None:
        """Nothing to release (a view holds no copy); kept so a view is used as a context manager."""

    def __enter__(self) -> LedgerView:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
