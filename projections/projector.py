"""Event -> rows: the pure mapping from the log's identity facts to projection table writes.

Facts arrive as (position, topic, fields): the read side depends on the stored format
(topics and field names), never on the write side's classes. Every fact carries the
outcome of its decision (the pointer it moved to, the user properties that resulted),
so projecting never reads the database and never re-applies an identity rule. Writes
are buffered per statement and sent as one `executemany` each, inserts first, then
updates in order of first use. That order is equivalent to applying the facts one by
one because an update only touches rows inserted before it, updates of different
statements set different columns, and each statement sets one column by one key, so only
its last row per key is sent (the last write wins). On PostgreSQL, where psycopg's
`executemany` costs a round of Python and a message per row, large inserts go by `COPY`
(`CopySink`) and each update statement goes as ONE `UPDATE ... FROM unnest(arrays)`
(`Update.over_arrays`). Tracked events are not projected: the log's own index is the
timeline (0.1.0's tracked events only get their position indexed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from projections import correction_facts, group_facts, identity_facts
from projections import tables as t
from projections.history import Version
from projections.writes import Fields, Update

#: Runs one statement (`?` placeholders) for each row.
Sink = Callable[[str, list[tuple[Any, ...]]], None]
#: Runs one statement (`?` placeholders) once, with these parameters.
Execute = Callable[[str, tuple[Any, ...]], None]
#: Appends rows to a table in bulk: (table name, column names, rows in that column order).
CopySink = Callable[[str, tuple[str, ...], list[tuple[Any, ...]]], None]
#: From this many rows on, an insert goes to the `CopySink` if there is one.
COPY_FROM = 100
#: Buffers the rows of one fact: the handler modules' functions (one per topic).
Handler = Callable[["Projector", int, Fields], None]


def _insert_sql(table: sa.Table) -> str:
    """An INSERT taking a tuple in the table's column order (rows are built as tuples: cheaper)."""
    columns = ", ".join(column.name for column in table.columns)
    return f"INSERT INTO {table.name} ({columns}) VALUES ({', '.join('?' * len(table.columns))})"


_INSERT = {table.name: _insert_sql(table) for table in t.PROJECTION_TABLES}
#: What `COPY` needs of each insert statement: its table's name and columns.
_COPY = {_INSERT[table.name]: (table.name, tuple(column.name for column in table.columns))
         for table in t.PROJECTION_TABLES}


#: The handler of each projected topic, grouped by what they project: one table, one look-up per fact.
_HANDLERS: dict[str, Handler] = {**identity_facts.HANDLERS, **group_facts.HANDLERS, **correction_facts.HANDLERS}


def _releases(rows: list[tuple[Any, ...]]) -> bool:
    """Whether a row frees its value, which a later row may take: one statement promises no order."""
    return any(row[0] is None for row in rows)


class Projector:
    """Buffers the writes for a page of facts; `flush` sends them.

    `copy`: large inserts go there (PostgreSQL outside a pipeline). `arrays`: updates go as one
    statement over arrays (PostgreSQL).
    """

    def __init__(self, copy: CopySink | None = None, *, arrays: bool = False) -> None:
        self._copy = copy
        self._arrays = arrays
        self._inserts: dict[str, list[tuple[Any, ...]]] = {}
        self._updates: dict[Update, list[tuple[Any, ...]]] = {}
        #: Each update's values in log order: (key, value, position, set by an insert).
        self._versions: dict[Update, list[Version]] = {}

    def apply(self, position: int, topic: str, fields: Fields) -> None:
        """Facts without a handler (a user ID recorded twice over, identify calls) change no row."""
        handler = _HANDLERS.get(topic)
        if handler is not None:
            handler(self, position, fields)

    def flush(self, sink: Sink, execute: Execute) -> None:
        for statement, rows in self._inserts.items():
            self._send(statement, rows, sink)
        for update, rows in self._updates.items():
            last = list({row[-1]: row for row in rows}.values())  # the last row per key
            self._send_update(update.one_row, update.over_arrays, last, sink, execute,
                              by_rows=update.unique and _releases(last))
        for update, versions in self._versions.items():  # after the rows they describe, same transaction
            closed, rows = update.history.rows(versions)
            if closed:
                self._send_update(update.history.close, update.history.close_over_arrays, closed, sink, execute)
            self._send(_INSERT[update.history.table.name], rows, sink)
        self._inserts.clear()
        self._updates.clear()
        self._versions.clear()

    def _send(self, statement: str, rows: list[tuple[Any, ...]], sink: Sink) -> None:
        if self._copy is not None and len(rows) >= COPY_FROM:
            self._copy(*_COPY[statement], rows)
        elif rows:
            sink(statement, rows)

    def _send_update(self, one_row: str, over: str, rows: list[tuple[Any, ...]], sink: Sink, execute: Execute, *,
                     by_rows: bool = False) -> None:
        if self._arrays and len(rows) > 1 and not by_rows:
            values, keys = zip(*rows, strict=True)
            execute(over, (list(values), list(keys)))
        else:
            sink(one_row, rows)

    def update(self, update: Update, row: tuple[Any, ...], position: int) -> None:
        self._updates.setdefault(update, []).append(row)
        self._versions.setdefault(update, []).append((row[1], row[0], position, False))

    def inserted(self, update: Update, key: Any, position: int) -> None:
        """A row inserted at `position` with its column's first value (kept in the row: no history row)."""
        self._versions.setdefault(update, []).append((key, None, position, True))

    def insert(self, table: sa.Table, row: tuple[Any, ...]) -> None:
        """`row` lists the values in the table's column order (see projections.tables)."""
        self._inserts.setdefault(_INSERT[table.name], []).append(row)

    def audit(self, position: int, kind: str, fields: Fields, amplitude_id: int,
               merged_amplitude_id: int | None = None, seq: int = 0) -> None:
        self.insert(t.audit, (position, seq, kind, amplitude_id, merged_amplitude_id, fields["user_id"],
                               fields["device_id"], fields["event_time"], fields["server_time"], fields["insert_id"],
                               None))

    def amended(self, position: int, kind: str, fields: Fields, amplitude_id: int, *, user_id: str | None,
                 merged_amplitude_id: int | None = None, device_id: str = "", seq: int = 0) -> None:
        """An audit row for a fact a correction recorded: at the correction's time, naming it."""
        time = fields["server_time"]
        self.insert(t.audit, (position, seq, kind, amplitude_id, merged_amplitude_id, user_id, device_id, time,
                               time, None, fields["correction"]))
