"""Bulk reads of the stored events, straight from eventsourcing's events table.

Reading events back one aggregate or one notification at a time through eventsourcing's
recorder costs a round of Python objects and a transaction each. These reads go through
SQLAlchemy instead: many aggregates in one query before a request, large pages of the
log's identity facts for catch-up and rebuild (tracked events are skipped in SQL, never
decoded), and the timelines straight from the store's (originator_id, version) index.
"""

from __future__ import annotations

from ledger.store.log_table import IN_CHUNK
from ledger.store.ordered_reads import OrderedReads
from ledger.store.timeline_reads import TimelineReads, TrackedRow
from ledger.store.write_reads import WritePathReads

__all__ = ["IN_CHUNK", "EventLog", "TrackedRow"]


class EventLog(WritePathReads, OrderedReads, TimelineReads):
    """Reads of one store's events table, in log order or by aggregate: each caller's reads live in a
    module of their own (`write_reads`, `ordered_reads`, `timeline_reads`); this is them together."""
