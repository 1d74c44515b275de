"""PostgreSQL: making erased rows unreadable in the database files, after the transaction that erased them.

A `DELETE` or `UPDATE` leaves the old row versions in the table's pages, its indexes' pages and its
TOAST table; plain `VACUUM` marks their space free but does not zero it, so the values stay
readable in the files (and in a physical backup copied from them). `VACUUM FULL` writes the live
rows to new files and truncates the old ones at commit, under the table's ACCESS EXCLUSIVE lock
(docs/privacy.md has its cost). It copies every row version some open snapshot may still see,
though: a rewrite while a transaction older than the erasing one is open keeps the person. So it
first waits until no snapshot of this database (nor a replica's, through a replication slot or a
walsender, nor a prepared transaction) is older than the erasing transaction; and it asks for
each table's lock with a `lock_timeout`, trying again until the same deadline, so that a reader
holding a table does not make every query queue behind the waiting rewrite.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

#: How long a rewrite waits for older snapshots and for its locks before it gives up (the job then says so).
REWRITE_WAIT = 60.0
#: How long one attempt waits for a table's lock; queries on the table queue behind it meanwhile.
LOCK_WAIT = 1.0
_POLL = 0.05

# `age()` counts back from the next transaction ID: a snapshot older than or as old as the
# erasing transaction has an xmin at least as old as it. Sessions of other roles are seen only
# with `pg_read_all_stats` (docs/privacy.md).
_OLDER_SNAPSHOTS = """
WITH erasing AS (SELECT age(CAST(CAST(%(xid)s AS xid8) AS xid)) AS age)
SELECT (SELECT count(*) FROM pg_stat_activity, erasing
        WHERE pid <> pg_backend_pid() AND (datname = current_database() OR datname IS NULL)
          AND (age(backend_xmin) >= erasing.age OR age(backend_xid) >= erasing.age))
     + (SELECT count(*) FROM pg_replication_slots, erasing WHERE age(xmin) >= erasing.age)
     + (SELECT count(*) FROM pg_prepared_xacts, erasing
        WHERE database = current_database() AND age(transaction) >= erasing.age)
"""


def erasing_transaction(cursor: Any) -> str:
    """The ID of the open transaction that erases (it has one: it wrote)."""
    cursor.execute("SELECT CAST(pg_current_xact_id() AS text)")
    return str(cursor.fetchone()[0])


def _older_snapshots(connection: Any, xid: str) -> int:
    return int(connection.execute(_OLDER_SNAPSHOTS, {"xid": xid}).fetchone()[0])


def rewrite(connection: Any, tables: list[str], erased_in: str) -> bool:
    """`VACUUM FULL` each table once no snapshot predates `erased_in`; False if that or a lock took
    longer than `REWRITE_WAIT` (the operator then runs `VACUUM FULL` on the ledger's tables later).

    `connection` is in autocommit mode: each table is its own transaction, so each lock is held
    only while that table is copied.
    """
    deadline = time.monotonic() + REWRITE_WAIT
    while _older_snapshots(connection, erased_in):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    connection.execute(f"SET lock_timeout = {int(LOCK_WAIT * 1000)}")
    try:
        for table in tables:
            while not _rewritten(connection, table):
                if time.monotonic() > deadline:
                    return False
    finally:
        connection.execute("RESET lock_timeout")
    return True


def _rewritten(connection: Any, table: str) -> bool:
    try:
        connection.execute(f"VACUUM FULL {table}")
    except psycopg.errors.LockNotAvailable:
        return False
    return True
