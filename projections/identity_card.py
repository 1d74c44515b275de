"""Who someone is, in one statement: the live amplitude ID, its merges, row and devices (an `Identity`).

A resolve was five statements; on PostgreSQL each round trip cost more than the index lookups it
carried, so the answer comes back as one `UNION ALL` (`_card`), a row per part.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa

from projections import groups as g
from projections.history import Tables
from projections.models import Identity
from projections.statements import prepared
from projections.timeline import retired_among

_decode = msgspec.json.Decoder()

#: The parts of an identity's card (`_card`), in the order they come back.
_LIVE, _MERGED, _ROW, _DEVICE, _CORRECTED, _GROUPED, _MAPPED = range(7)


def _card(tables: Tables, asked: sa.ColumnElement[Any]) -> sa.CompoundSelect[Any]:
    """Everything an `Identity` needs in one statement, one part per row: the live amplitude ID, those merged
    into it, its row, its devices, and whether any correction, group membership or user mapping is stored
    (most ledgers have none, and then skip the look-ups they would need). `asked` is the amplitude ID
    asked about: a device's pointer, a user ID's binding, or given.
    """
    identities, merges, links = tables.identities, tables.merges, tables.device_identities
    # The live amplitude ID: the one `asked` was merged into, else `asked` (merges are one level deep, and
    # the merges table says what merged-into says, without the joins of the identities' history). Found once
    # (a CTE), then joined by every part: as a scalar subquery each part found it again. The CTE is one row
    # (NULL if nobody) to every planner: PostgreSQL, estimating a CTE over the tables themselves at
    # thousands of rows, hash-joined whole tables (45 ms at 1M events).
    given = sa.select(asked.label("id")).subquery("asked")
    merged_into = sa.select(merges.c.merged_amplitude_id).where(merges.c.amplitude_id == given.c.id).scalar_subquery()
    live = sa.select(sa.func.coalesce(merged_into, given.c.id).label("id")).cte("live").c.id

    def part(index: int, amplitude_id: Any = None, value: Any = None, properties: Any = None,
             rank: Any = None) -> sa.Select[*tuple[Any, ...]]:
        """Typed columns in every part: PostgreSQL types a UNION's NULLs from the parts before them."""
        return sa.select(sa.literal_column(str(index)).label("part"),
                         *(sa.cast(sa.null() if column is None else column, column_type).label(name)
                           for name, column, column_type in (("id", amplitude_id, sa.BigInteger), ("value", value, sa.Text),
                                                             ("properties", properties, sa.Text),
                                                             ("rank", rank, sa.BigInteger))))

    def stored(index: int, table: sa.FromClause) -> sa.Select[*tuple[Any, ...]]:
        return part(index).where(sa.exists(sa.select(sa.literal_column("1")).select_from(table)))

    card = sa.union_all(
        part(_LIVE, live),
        part(_MERGED, merges.c.amplitude_id, rank=merges.c.position).where(merges.c.merged_amplitude_id == live),
        part(_ROW, value=identities.c.user_id, properties=identities.c.user_properties).where(
            identities.c.amplitude_id == live),
        part(_DEVICE, value=links.c.device_id, rank=links.c.position).where(links.c.amplitude_id == live),
        stored(_CORRECTED, tables.corrections), stored(_GROUPED, tables.group_members),
        stored(_MAPPED, tables.user_mappings))
    return card.order_by(*(card.selected_columns[name] for name in ("part", "rank", "value")))


def _pointer(tables: Tables) -> sa.Select[int]:
    """The amplitude ID a device's next anonymous event goes to."""
    devices = tables.devices
    return sa.select(devices.c.pointer).where(devices.c.device_id == sa.bindparam("device_id"))


def binding(tables: Tables) -> sa.Select[int]:
    """The amplitude ID a user ID is bound to."""
    identities = tables.identities
    return sa.select(identities.c.amplitude_id).where(identities.c.user_id == sa.bindparam("user_id"))


#: The card by what is asked: a device ID (its pointer), a user ID (its binding) or an amplitude ID.
_CARDS = {
    "device_id": prepared(lambda tables: _card(tables, _pointer(tables).scalar_subquery())),
    "user_id": prepared(lambda tables: _card(tables, binding(tables).scalar_subquery())),
    "amplitude_id": prepared(lambda tables: _card(tables, sa.bindparam("amplitude_id", type_=sa.BigInteger))),
}


def identity_of(connection: sa.Connection, tables: Tables, **asked: Any) -> Identity | None:
    """The person a device ID, user ID or amplitude ID (`asked`, one of them) belongs to.

    None for an amplitude ID never created, or retired by a correction (its events count for others now).
    """
    [(name, value)] = asked.items()
    ids: list[int] = []
    row: tuple[str | None, str] | None = None
    devices: list[str] = []
    stored: set[int] = set()
    for part, amplitude_id, text, properties, _ in _CARDS[name](tables).rows(connection, **{name: value}):
        if part in (_LIVE, _MERGED):
            ids.append(amplitude_id)
        elif part == _ROW:
            row = (text, properties)
        elif part == _DEVICE:
            devices.append(text)
        else:
            stored.add(part)
    if ids[0] is None:  # nobody: the device, user ID or amplitude ID is unknown (then)
        return None
    if _CORRECTED in stored and retired_among(connection, tables, ids[:1]):
        return None
    if row is None:  # merged into a retired amplitude ID that a deletion job forgot with a person split off it
        return None
    user_id, properties = row
    mapped = user_id if _MAPPED in stored else None  # only a user ID can be mapped
    return Identity(amplitude_id=ids[0], user_id=user_id, device_ids=devices,
                    merged_amplitude_ids=ids[1:], user_properties=_decode.decode(properties),
                    groups=g.groups_of(connection, tables, ids) if _GROUPED in stored else {},
                    global_user_id=None if mapped is None else g.global_user_id(connection, tables, mapped),
                    mapped_user_ids=[] if mapped is None else g.mapped_user_ids(connection, tables, mapped))
