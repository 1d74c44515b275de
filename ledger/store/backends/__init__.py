"""The databases the ledger runs on, one module each behind `base.Backend`; `backend_for` picks one from a URL."""

from __future__ import annotations

import sqlalchemy as sa

from ledger.store.backends.base import Backend, BadDatabaseURL
from ledger.store.backends.postgres import PostgresBackend
from ledger.store.backends.sqlite import SQLiteBackend

_BACKENDS: dict[str, Backend] = {backend.name: backend for backend in (SQLiteBackend(), PostgresBackend())}


def backend_for(parsed: sa.URL) -> Backend:
    """The backend of a parsed database URL; BadDatabaseURL for a database the ledger cannot use.

    The one place that asks which database a URL names."""
    backend = _BACKENDS.get(parsed.get_backend_name())
    if backend is None:
        raise BadDatabaseURL(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql+psycopg://")
    return backend


__all__ = ["Backend", "BadDatabaseURL", "backend_for"]
