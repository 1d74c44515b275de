"""`explain`: why a tracked event belongs to its person, as the audit facts that made it so.

An event keeps the amplitude ID it arrived as; what it counts for today follows from later
facts: a correction may re-attribute it (`ledger_reattributed`), and merges fold its amplitude
ID into a live one. The explanation lists, in ledger order, the facts up to the event that
put its device where it pointed and its user ID where it was bound, then every fact after it
that moved one of the amplitude IDs on its way (merged, merge undone, retired, split off).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from projections.history import Tables
from projections.models import AuditEntry

#: The facts that place a device or a user ID (up to the event).
_PLACING = ("created", "linked", "pointer_moved", "bound", "rebound")
#: The facts that move an amplitude ID's events (after the event).
_MOVING = ("merged", "merge_undone", "retired", "split", "retracted")


def explaining_facts(connection: sa.Connection, tables: Tables, position: int, fields: dict[str, Any],
                     way: list[int]) -> list[dict[str, Any]]:
    """The audit rows (with the correction's requester and reason) that explain the event at `position`,
    whose amplitude IDs on the way from arrival to today are `way`."""
    audit, corrections = tables.audit, tables.corrections
    placed = sa.and_(audit.c.position <= position, audit.c.kind.in_(_PLACING), audit.c.amplitude_id.in_(way),
                     sa.or_(audit.c.device_id == fields["device_id"],
                            sa.and_(audit.c.user_id == fields["user_id"], audit.c.kind.in_(("bound", "rebound")))
                            if fields["user_id"] is not None else sa.false()))
    moved = sa.and_(audit.c.position > position, audit.c.kind.in_(_MOVING),
                    sa.or_(audit.c.amplitude_id.in_(way), audit.c.merged_amplitude_id.in_(way)))
    query = (sa.select(audit, corrections.c.requester, corrections.c.reason)
             .join(corrections, sa.and_(corrections.c.user_id == audit.c.correction, audit.c.kind == "retracted"),
                   isouter=True)
             .where(sa.or_(placed, moved)).order_by(audit.c.position, audit.c.seq))
    return [dict(row._mapping) for row in connection.execute(query)]


def as_entries(rows: list[dict[str, Any]]) -> list[AuditEntry]:
    return [AuditEntry(**{name: row[name] for name in AuditEntry.__struct_fields__}) for row in rows]
