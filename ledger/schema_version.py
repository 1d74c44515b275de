"""The version of the read side's schema, recorded in the database it describes.

The projections are derived from the log, so an older read side is migrated by
rebuilding it; a read side written by a newer release is refused, never half-used.
Bump `READ_SIDE_VERSION` whenever `projections.tables` (or what a projection stores) changes.
"""

from __future__ import annotations

from enum import Enum

import sqlalchemy as sa

from ledger.errors import SchemaTooNew
from projections import tables as projection_tables

#: 1: the first recorded version (release 0.1.0's read side counts as 0).
READ_SIDE_VERSION = 1
_NAME = "read_side"

_metadata = sa.MetaData()
versions = sa.Table(
    "ledger_schema_version",
    _metadata,
    sa.Column("component", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)


class ReadSide(Enum):
    FRESH = "fresh"  # no read side yet: it will be created at this version
    CURRENT = "current"
    OLDER = "older"  # must be rebuilt before use


def read_side(engine: sa.Engine) -> ReadSide:
    """The state of the read side's schema; raises SchemaTooNew if a newer release wrote it."""
    inspector = sa.inspect(engine)
    if not inspector.has_table(versions.name):
        stored = 0 if inspector.has_table(projection_tables.positions.name) else None
    else:
        with engine.connect() as connection:
            stored = connection.execute(
                sa.select(versions.c.version).where(versions.c.component == _NAME)
            ).scalar()
    if stored is None:
        return ReadSide.FRESH
    if stored > READ_SIDE_VERSION:
        raise SchemaTooNew(
            f"this ledger's read side was written by a newer release (schema version {stored}; this release knows"
            f" up to {READ_SIDE_VERSION}): upgrade identity-ledger to open it"
        )
    return ReadSide.CURRENT if stored == READ_SIDE_VERSION else ReadSide.OLDER


def record(engine: sa.Engine) -> None:
    """Record that the read side now has this release's schema."""
    _metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(versions.delete().where(versions.c.component == _NAME))
        connection.execute(versions.insert(), {"component": _NAME, "version": READ_SIDE_VERSION})
