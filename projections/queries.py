"""The read model, declared once: who, what happened, when and why.

`ReadModel` answers from one set of projection tables plus the log up to one position.
The live ledger (`ledger.IdentityLedger`), a past state (`ledger.LedgerView`, from `as_of`)
and through them the HTTP API each hold one; they differ only in the tables it asks (the live
ones, or the same tables as they stood at the position: `projections.history.at`) and how the
position is found (the `reading` it is given). Answering never writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import msgspec
import sqlalchemy as sa

from projections import groups as g
from projections.explaining import as_entries, explaining_facts
from projections.history import LIVE, Tables
from projections.identity_card import binding, identity_of
from projections.models import (
    AuditEntry,
    Correction,
    CorrectionChanges,
    Explanation,
    Group,
    Identity,
    MappingEntry,
    Merge,
    Stats,
    TimelineEvent,
)
from projections.statements import prepared
from projections.timeline import (
    TimelineLog,
    answer,
    counts_by_attribution,
    has_corrections,
    person_event_count,
    person_timeline,
    reattributed_between,
)

T = TypeVar("T", bound=msgspec.Struct)


class Reading(NamedTuple):
    """Where answers come from: the projection tables' engine, the log, and the position read up to."""

    engine: sa.Engine
    log: TimelineLog
    position: int
    #: The tables as they stood at `position` (the live ones for the live ledger).
    tables: Tables = LIVE


class ReadModel:
    """Every question a reader can ask the ledger, answered from where `reading` says."""

    def __init__(self, reading: Callable[[], Reading]) -> None:
        #: Where this question's answer comes from, asked once per question (the live position moves).
        self._reading = reading

    def resolve(self, *, device_id: str | None = None, user_id: str | None = None) -> Identity | None:
        """Who a device ID's next anonymous event goes to, or whom a user ID is bound to."""
        check_one_of(device_id, user_id)
        reading = self._reading()
        with reading.engine.connect() as connection:
            if device_id is not None:
                return identity_of(connection, reading.tables, device_id=device_id)
            return identity_of(connection, reading.tables, user_id=user_id)

    def identity(self, amplitude_id: int) -> Identity | None:
        """The person an amplitude ID (live or merged) belongs to; None if never created or forgotten."""
        reading = self._reading()
        with reading.engine.connect() as connection:
            return identity_of(connection, reading.tables, amplitude_id=amplitude_id)

    def is_forgotten(self, amplitude_id: int) -> bool:
        """Whether a deletion job erased this amplitude ID (its person answers None everywhere else)."""
        reading = self._reading()
        forgotten = reading.tables.forgotten
        with reading.engine.connect() as connection:
            return connection.execute(sa.select(forgotten.c.amplitude_id)
                                      .where(forgotten.c.amplitude_id == amplitude_id)).first() is not None

    def timeline(self, amplitude_id: int, *, after: int = 0, limit: int | None = None,
                 newest_first: bool = False) -> list[TimelineEvent]:
        """Every tracked event of the person `amplitude_id` belongs to (merged IDs included), after `after`;
        a global user ID's person also has the events of the user IDs mapped onto it."""
        reading = self._reading()
        with reading.engine.connect() as connection:
            ids = _with_mapped(connection, reading.tables, _person_amplitude_ids(connection, reading.tables, amplitude_id))
            if not ids:
                return []
            return person_timeline(connection, reading.tables, reading.log, ids, stop=reading.position, after=after, limit=limit,
                                   newest_first=newest_first)

    def event_count(self, amplitude_id: int) -> int:
        """How many tracked events the person `amplitude_id` belongs to has (mapped user IDs' included)."""
        reading = self._reading()
        with reading.engine.connect() as connection:
            ids = _with_mapped(connection, reading.tables, _person_amplitude_ids(connection, reading.tables, amplitude_id))
            return person_event_count(connection, reading.tables, reading.log, ids, reading.position) if ids else 0

    def events(self, *, after: int = 0, limit: int = 10_000) -> list[TimelineEvent]:
        """Every tracked event in ledger order, a page at a time (for exports)."""
        reading = self._reading()
        rows = reading.log.tracked(after=after, stop=reading.position, limit=limit)
        with reading.engine.connect() as connection:
            live = _live_ids(connection, reading.tables)
            moved = reattributed_between(connection, reading.tables, rows[0][0], rows[-1][0]) \
                if rows and has_corrections(connection, reading.tables) else {}
            found = []
            for row in rows:
                current = moved.get(row[0], row[1])
                found.append(answer(row, live.get(current, current)))
            return g.with_group_properties(connection, reading.tables, found)

    def merges(self) -> list[Merge]:
        """Amplitude's merged-users table: each merged amplitude ID and the live one it counts for.

        A merge a correction undid stays listed, with the correction's time as `undone_server_time`.
        """
        reading = self._reading()
        merges, retired = reading.tables.merges, reading.tables.retired
        query = (sa.select(merges, retired.c.server_time.label("undone"))
                 .join(retired, retired.c.amplitude_id == merges.c.amplitude_id, isouter=True)
                 .order_by(merges.c.position))
        with reading.engine.connect() as connection:
            return [Merge(row.amplitude_id, row.merged_amplitude_id, row.merge_event_time, row.merge_server_time,
                          row.undone) for row in connection.execute(query)]

    def corrections(self) -> list[Correction]:
        """Every correction (retracted user ID), in ledger order: who asked, why, when, what it changed."""
        reading = self._reading()
        corrections = reading.tables.corrections
        with reading.engine.connect() as connection:
            rows = connection.execute(sa.select(corrections).order_by(corrections.c.position)).all()
        return [Correction(position=row.position, user_id=row.user_id, amplitude_id=row.amplitude_id,
                           reason=row.reason, requester=row.requester, server_time=row.server_time,
                           changes=msgspec.json.decode(row.summary, type=CorrectionChanges, strict=False))
                for row in rows]

    def audit(self, *, user_id: str | None = None, device_id: str | None = None,
              amplitude_id: int | None = None) -> list[AuditEntry]:
        """Identity facts in ledger order: of one device, or of one person (all their amplitude IDs)."""
        if sum(value is not None for value in (user_id, device_id, amplitude_id)) != 1:
            raise ValueError("give exactly one of user_id, device_id, amplitude_id")
        reading = self._reading()
        tables = reading.tables
        audit, corrections = tables.audit, tables.corrections
        with reading.engine.connect() as connection:
            if device_id is not None:
                condition = audit.c.device_id == device_id
            else:
                ids = (_ever_bound(connection, tables, user_id) if user_id is not None
                       else _person_amplitude_ids(connection, tables, amplitude_id) if amplitude_id is not None
                       else [])
                if not ids:
                    return []
                condition = audit.c.amplitude_id.in_(ids)
            query = (sa.select(audit, corrections.c.requester, corrections.c.reason)
                     .join(corrections, sa.and_(corrections.c.user_id == audit.c.correction,
                                                audit.c.kind == "retracted"), isouter=True)
                     .where(condition).order_by(audit.c.position, audit.c.seq))
            return [_answer(AuditEntry, row) for row in connection.execute(query)]

    def group(self, group_type: str, group_value: str) -> Group | None:
        """A group (docs/rules.md, Groups): its properties now, and every amplitude ID that joined it, when."""
        reading = self._reading()
        with reading.engine.connect() as connection:
            return g.group(connection, reading.tables, group_type, group_value, _live_ids(connection, reading.tables))

    def mappings(self, user_id: str | None = None) -> list[MappingEntry]:
        """Every mapping and unmapping in ledger order (who asked, when): all, or those naming `user_id`."""
        reading = self._reading()
        with reading.engine.connect() as connection:
            return g.mapping_history(connection, reading.tables, user_id)

    def explain(self, position: int) -> Explanation | None:
        """Why the tracked event at `position` belongs to its person (None: no tracked event there)."""
        if position < 0:
            raise ValueError("position must be >= 0")
        reading = self._reading()
        found = reading.log.tracked(after=position - 1, stop=min(position, reading.position), limit=1) \
            if position > 0 else []
        if not found:
            return None
        _, arrived_as, fields = found[0]
        tables = reading.tables
        with reading.engine.connect() as connection:
            moved = tables.reattributed
            counted_for = connection.execute(sa.select(moved.c.amplitude_id).where(
                moved.c.position == position)).scalar() or arrived_as
            identity = identity_of(connection, tables, amplitude_id=counted_for)
            way = list(dict.fromkeys([arrived_as, counted_for, *(_person_amplitude_ids(connection, tables,
                                                                                      counted_for)[:1])]))
            rows = explaining_facts(connection, tables, position, fields, way)
        return Explanation(position=position, arrived_as=arrived_as,
                           now=None if identity is None else identity.amplitude_id, because=as_entries(rows))

    def stats(self) -> Stats:
        """Counts over the whole ledger (`users` counts people with at least one tracked event)."""
        reading = self._reading()
        count = sa.func.count
        with reading.engine.connect() as connection:
            def scalar(query: Any) -> int:
                return int(connection.execute(query).scalar() or 0)

            tables = reading.tables
            counts = counts_by_attribution(connection, tables, reading.log, reading.position)
            live = _live_ids(connection, tables)
            mapped = _mapped_live_ids(connection, tables, live)
            people = {live.get(amplitude_id, amplitude_id) for amplitude_id in counts}
            return Stats(
                events=sum(counts.values()),
                users=len({mapped.get(amplitude_id, amplitude_id) for amplitude_id in people}),
                identified_users=scalar(
                    sa.select(count()).select_from(tables.identities).where(tables.identities.c.user_id.is_not(None))),
                devices=scalar(sa.select(count()).select_from(tables.devices)),
                merges=scalar(sa.select(count()).select_from(tables.merges).where(
                    tables.merges.c.amplitude_id.not_in(sa.select(tables.retired.c.amplitude_id)))),
            )


def check_one_of(device_id: str | None, user_id: str | None) -> None:
    """`resolve` takes a device ID or a user ID, never both, never neither."""
    if (device_id is None) == (user_id is None):
        raise ValueError("give exactly one of device_id, user_id")


#: The binding of a user ID asked on its own: each user ID mapped onto a person's.
_bound_to = prepared(binding)


@prepared
def _person_of(tables: Tables) -> sa.Select[int, int | None]:
    """The live amplitude ID of `amplitude_id`, with each one merged into it.

    The merges are joined on the live ID as a scalar subquery, a value known before the join: a
    planner without statistics (PostgreSQL before its first ANALYZE) then looks them up by index
    instead of hashing every merge up to the position.
    """
    identities, merges = tables.identities, tables.merges
    live = sa.func.coalesce(identities.c.merged_into, identities.c.amplitude_id)
    asked = identities.c.amplitude_id == sa.bindparam("amplitude_id")
    live_id = sa.select(live).where(asked).correlate(None).scalar_subquery()
    return (sa.select(live, merges.c.amplitude_id)
            .select_from(identities.outerjoin(merges, merges.c.merged_amplitude_id == live_id))
            .where(asked).order_by(merges.c.position))


def _person_amplitude_ids(connection: sa.Connection, tables: Tables, amplitude_id: int) -> list[int]:
    """The live amplitude ID first, then those merged into it, in merge order; [] if it never existed."""
    rows = _person_of(tables).rows(connection, amplitude_id=amplitude_id)
    if not rows:
        return []
    return [rows[0][0]] + [row[1] for row in rows if row[1] is not None]


def _ever_bound(connection: sa.Connection, tables: Tables, user_id: str) -> list[int]:
    """Every amplitude ID of every person the user ID was ever bound to (corrections move or retract bindings)."""
    audit = tables.audit
    bound = connection.execute(sa.select(audit.c.amplitude_id).where(
        audit.c.user_id == user_id, audit.c.kind.in_(("bound", "rebound", "retracted"))).distinct()).all()
    ids: list[int] = []
    for (amplitude_id,) in bound:
        ids.extend(_person_amplitude_ids(connection, tables, amplitude_id))
    return ids


def _with_mapped(connection: sa.Connection, tables: Tables, ids: list[int]) -> list[int]:
    """A person's amplitude IDs, then those of every person whose user ID is mapped onto theirs."""
    if not ids:
        return ids
    identities = tables.identities
    user_id = connection.execute(sa.select(identities.c.user_id).where(identities.c.amplitude_id == ids[0])).scalar()
    found = list(ids)
    for mapped in [] if user_id is None else g.mapped_user_ids(connection, tables, user_id):
        bound = _bound_to(tables).scalar(connection, user_id=mapped)
        if bound is not None:
            found.extend(amplitude_id for amplitude_id in _person_amplitude_ids(connection, tables, bound)
                         if amplitude_id not in found)
    return found


def _mapped_live_ids(connection: sa.Connection, tables: Tables, live: dict[int, int]) -> dict[int, int]:
    """The live amplitude ID of each mapped user ID -> that of its global user ID (counted as one user)."""
    mappings = g.current_mappings(connection, tables)
    if not mappings:
        return {}
    identities = tables.identities
    bound = dict(connection.execute(sa.select(identities.c.user_id, identities.c.amplitude_id).where(
        identities.c.user_id.in_([*mappings, *mappings.values()]))).all())
    return {live.get(bound[user_id], bound[user_id]): live.get(bound[target], bound[target])
            for user_id, target in mappings.items() if user_id in bound and target in bound}


def _live_ids(connection: sa.Connection, tables: Tables) -> dict[int, int]:
    """Merged amplitude ID -> the live one (the merges table, as Amplitude exports it)."""
    merges = tables.merges
    return dict(connection.execute(sa.select(merges.c.amplitude_id, merges.c.merged_amplitude_id)).all())


def _answer(answer_type: type[T], row: Any) -> T:
    """An answer Struct from the row's columns of the same names."""
    columns = row._mapping
    return answer_type(**{name: columns[name] for name in answer_type.__struct_fields__})
