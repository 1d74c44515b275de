"""Read statements built once per set of tables, with bind parameters for what each question asks.

Building a SELECT and deriving its cache key walk the whole construct, and a past view's tables
are subqueries over the history (`projections.history.at`): that walk cost more than the index
lookups themselves. A statement built once per `Tables` keeps its cache key (SQLAlchemy memoizes
it on the object), so asking it again costs the execution alone. The live tables are one `Tables`;
each past view is another, kept while it is among the most recent ones asked.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from projections.history import Tables

#: Past views whose statements stay built (the live tables' count as one).
VIEWS_KEPT = 32

S = TypeVar("S")


def per_tables(build: Callable[[Tables], S]) -> Callable[[Tables], S]:
    """`build(tables)` once per `Tables` among the most recently asked."""
    return lru_cache(maxsize=VIEWS_KEPT)(build)
