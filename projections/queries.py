"""Questions answered from the projection tables: who, what happened, when and why."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa

from projections import tables as t
from projections.models import AuditEntry, Identity, Merge, TimelineEvent

_decode = msgspec.json.Decoder()
T = TypeVar("T", bound=msgspec.Struct)


class ProjectionQueries:
    """Read-only queries over one database's projection tables."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _all(self, query: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def _scalar(self, query: Any) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def live_amplitude_id(self, amplitude_id: int) -> int | None:
        """The live amplitude ID a (possibly merged) one now counts for; None if it never existed."""
        rows = self._all(sa.select(t.identities.c.merged_into).where(t.identities.c.amplitude_id == amplitude_id))
        if not rows:
            return None
        return rows[0].merged_into if rows[0].merged_into is not None else amplitude_id

    def person_amplitude_ids(self, amplitude_id: int) -> list[int]:
        """The live amplitude ID first, then those merged into it, in merge order."""
        live = self.live_amplitude_id(amplitude_id)
        if live is None:
            return []
        merged = self._all(
            sa.select(t.merges.c.amplitude_id)
            .where(t.merges.c.merged_amplitude_id == live)
            .order_by(t.merges.c.position)
        )
        return [live] + [row.amplitude_id for row in merged]

    def identity(self, amplitude_id: int) -> Identity | None:
        ids = self.person_amplitude_ids(amplitude_id)
        if not ids:
            return None
        live = ids[0]
        row = self._all(sa.select(t.identities).where(t.identities.c.amplitude_id == live))[0]
        devices = self._all(
            sa.select(t.device_identities.c.device_id)
            .where(t.device_identities.c.amplitude_id == live)
            .order_by(t.device_identities.c.position)
        )
        return Identity(
            amplitude_id=live,
            user_id=row.user_id,
            device_ids=[device.device_id for device in devices],
            merged_amplitude_ids=ids[1:],
            user_properties=_decode.decode(row.user_properties),
        )

    def amplitude_id_for(self, *, device_id: str | None = None, user_id: str | None = None) -> int | None:
        """The amplitude ID a device's next anonymous event goes to, or a user ID is bound to."""
        if device_id is not None:
            return self._scalar(sa.select(t.devices.c.pointer).where(t.devices.c.device_id == device_id))
        return self._scalar(sa.select(t.identities.c.amplitude_id).where(t.identities.c.user_id == user_id))

    def resolve(self, *, device_id: str | None = None, user_id: str | None = None) -> Identity | None:
        amplitude_id = self.amplitude_id_for(device_id=device_id, user_id=user_id)
        return None if amplitude_id is None else self.identity(amplitude_id)

    def timeline(self, amplitude_id: int, *, after: int = 0, limit: int | None = None,
                 newest_first: bool = False) -> list[TimelineEvent]:
        """The person's merged timeline in ledger order (or newest first), after position `after`."""
        live = self.live_amplitude_id(amplitude_id)
        if live is None:
            return []
        position = t.timeline.c.position
        query = (
            sa.select(t.timeline)
            .where(t.timeline.c.amplitude_id == live, position > after)
            .order_by(position.desc() if newest_first else position)
            .limit(limit)
        )
        return [_timeline_event(row) for row in self._all(query)]

    def event_count(self, amplitude_id: int) -> int:
        """How many tracked events the person has (merged amplitude IDs included)."""
        live = self.live_amplitude_id(amplitude_id)
        if live is None:
            return 0
        return self._scalar(sa.select(sa.func.count()).select_from(t.timeline).where(t.timeline.c.amplitude_id == live))

    def events(self, *, after: int = 0, limit: int = 10_000) -> list[TimelineEvent]:
        """Every tracked event in ledger order, a page at a time (for exports)."""
        query = sa.select(t.timeline).where(t.timeline.c.position > after).order_by(t.timeline.c.position).limit(limit)
        return [_timeline_event(row) for row in self._all(query)]

    def merges(self) -> list[Merge]:
        rows = self._all(sa.select(t.merges).order_by(t.merges.c.position))
        return [Merge(row.amplitude_id, row.merged_amplitude_id, row.merge_event_time, row.merge_server_time)
                for row in rows]

    def audit(self, *, user_id: str | None = None, device_id: str | None = None,
              amplitude_id: int | None = None) -> list[AuditEntry]:
        """Identity facts in ledger order: of one device, or of one person (all their amplitude IDs)."""
        if device_id is not None:
            condition = t.audit.c.device_id == device_id
        else:
            if user_id is not None:
                amplitude_id = self.amplitude_id_for(user_id=user_id)
            ids = self.person_amplitude_ids(amplitude_id) if amplitude_id is not None else []
            if not ids:
                return []
            condition = t.audit.c.amplitude_id.in_(ids)
        rows = self._all(sa.select(t.audit).where(condition).order_by(t.audit.c.position, t.audit.c.seq))
        return [_answer(AuditEntry, row) for row in rows]

    def stats(self) -> dict[str, int]:
        count = sa.func.count
        with self.engine.connect() as connection:
            def scalar(query: Any) -> int:
                return int(connection.execute(query).scalar() or 0)

            return {
                "events": scalar(sa.select(count()).select_from(t.timeline)),
                "users": scalar(sa.select(count(sa.distinct(t.timeline.c.amplitude_id)))),
                "identified_users": scalar(
                    sa.select(count()).select_from(t.identities).where(t.identities.c.user_id.is_not(None))
                ),
                "devices": scalar(sa.select(count()).select_from(t.devices)),
                "merges": scalar(sa.select(count()).select_from(t.merges)),
            }


def _answer(answer: type[T], row: Any, **decoded: Any) -> T:
    """An answer Struct from the row's columns of the same names (`decoded` replaces JSON columns)."""
    columns = row._mapping
    return answer(**{name: columns[name] for name in answer.__struct_fields__ if name not in decoded}, **decoded)


def _timeline_event(row: Any) -> TimelineEvent:
    return _answer(TimelineEvent, row, event_properties=_decode.decode(row.event_properties),
                   user_properties=_decode.decode(row.user_properties))
