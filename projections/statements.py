"""Read statements built once per set of tables, with bind parameters for what each question asks.

Building a SELECT and deriving its cache key walk the whole construct, and a past view's tables
are subqueries over the history (`projections.history.at`): that walk cost more than the index
lookups themselves. A statement built once per `Tables` keeps its cache key (SQLAlchemy memoizes
it on the object), so asking it again costs the execution alone. The live tables are one `Tables`;
each past view is another, kept while it is among the most recent ones asked.

The statements of a resolve go one step further (`prepared`): compiled once per dialect and run on
the driver's own cursor. Executing a cached statement through SQLAlchemy (cache lookup, bind
processing, an execution context, a result object) costs about twice the index lookup it sends
(a resolve sent five then; it is one statement now, `projections.identity_card`). They are still
built with SQLAlchemy Core; only their execution skips its layers, so they take only parameters
and columns that need no type processing (integers, strings, bytes) and no expanding `IN`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect

from projections.history import Tables

#: Past views whose statements stay built (the live tables' count as one).
VIEWS_KEPT = 32

S = TypeVar("S")
#: A SELECT of any columns, or a UNION of them.
AnySelect = sa.Select[*tuple[Any, ...]] | sa.CompoundSelect[*tuple[Any, ...]]


def per_tables(build: Callable[[Tables], S]) -> Callable[[Tables], S]:
    """`build(tables)` once per `Tables` among the most recently asked."""
    return lru_cache(maxsize=VIEWS_KEPT)(build)


class _Compiled(NamedTuple):
    sql: str
    #: The parameters' names in the order of the placeholders; None for a driver taking them by name.
    order: tuple[str, ...] | None
    #: The values bound when the statement was built (a past view's position).
    fixed: dict[str, Any]


class Prepared:
    """A SELECT compiled once per dialect and run on the driver's cursor of a connection."""

    __slots__ = ("_by_dialect", "_statement")

    def __init__(self, statement: AnySelect) -> None:
        self._statement = statement
        self._by_dialect: dict[tuple[str, str], _Compiled] = {}

    def rows(self, connection: sa.Connection, **values: Any) -> list[tuple[Any, ...]]:
        """Every row the statement answers with `values` bound, as the driver returns them."""
        compiled = self._compiled(connection.dialect)
        given = {**compiled.fixed, **values}
        parameters = given if compiled.order is None else tuple(given[name] for name in compiled.order)
        cursor = connection.connection.cursor()
        try:
            cursor.execute(compiled.sql, parameters)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def first(self, connection: sa.Connection, **values: Any) -> tuple[Any, ...] | None:
        """The first row, or None."""
        rows = self.rows(connection, **values)
        return rows[0] if rows else None

    def scalar(self, connection: sa.Connection, **values: Any) -> Any:
        """The first column of the first row, or None."""
        row = self.first(connection, **values)
        return None if row is None else row[0]

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        found = self._by_dialect.get(key)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            if compiled.literal_execute_params or compiled.post_compile_params:
                raise TypeError("a prepared statement takes no expanding IN or literal-execute parameters")
            order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup is not None else None
            found = self._by_dialect[key] = _Compiled(str(compiled), order, dict(compiled.params))
        return found


def prepared(build: Callable[[Tables], AnySelect]) -> Callable[[Tables], Prepared]:
    """`per_tables`, the statement `Prepared` to run on the driver's cursor."""
    return per_tables(lambda tables: Prepared(build(tables)))
