"""What the fact handlers write with: the update statements, each keeping its column's history.

Shared by the projector (which buffers and sends them) and the handler modules (which choose them).
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from projections import tables as t
from projections.history import Versions

_json = msgspec.json.Encoder()
#: A fact's fields, as stored (topics and field names are the read side's contract).
Fields = dict[str, Any]


def to_json(value: Any) -> str:
    return _json.encode(value).decode()


class Update:
    """`UPDATE table SET column = ? WHERE key = ?`, for rows of (value, key); its values' history is kept."""

    __slots__ = ("history", "one_row", "over_arrays", "unique")

    def __init__(self, table: sa.Table, column: str, key: str, history: sa.Table) -> None:
        self.one_row = f"UPDATE {table.name} SET {column} = ? WHERE {key} = ?"
        #: A unique column's value is handed on only after a row released it (set it to None).
        self.unique = bool(table.c[column].unique)
        #: The column's values over ranges of positions (`projections.history`).
        self.history = Versions(history, key)
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        value_type, key_type = (table.c[name].type.compile(dialect=dialect) for name in (column, key))
        #: The same for every row at once, given (values, keys) as two PostgreSQL arrays.
        self.over_arrays = (f"UPDATE {table.name} AS target SET {column} = source.value "
                            f"FROM unnest(?::{value_type}[], ?::{key_type}[]) AS source(value, key) "
                            f"WHERE target.{key} = source.key")


MOVE_POINTER = Update(t.devices, "pointer", "device_id", t.device_pointer_history)
RECORD_USER_ID = Update(t.identities, "user_id", "amplitude_id", t.user_id_history)
SET_PROPERTIES = Update(t.identities, "user_properties", "amplitude_id", t.user_properties_history)
MARK_MERGED = Update(t.identities, "merged_into", "amplitude_id", t.merged_into_history)
REATTRIBUTE = Update(t.reattributed, "amplitude_id", "position", t.reattributed_history)

