"""Which processes have a ledger open, and whether the file they hold is still the ledger.

Every open `IdentityLedger` holds a shared writer lock for its whole life; an operation
that must have the ledger to itself (rebuilding the read side) takes it exclusively and
refuses at once, with a message saying why, while anyone else holds it. On SQLite the lock
is `flock` on a file beside the database (`<database>-writers.lock`); on PostgreSQL a
session-level advisory lock keyed by the schema, held on a connection of its own.

Schema setup on PostgreSQL (`setup_lock`) is serialized across processes by another
advisory lock, so many workers starting at once never race on `CREATE ... IF NOT EXISTS`.

On SQLite the writer also remembers which file (device and inode) it opened: if the path
is deleted or replaced underneath it, every later write or read is refused
(`LedgerFileReplaced`) instead of going into a file nobody will ever open again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.errors import LedgerInUse
from ledger.store.backends import BadDatabaseURL, backend_for
from ledger.store.database import Store, parse_url

_setup_threads = threading.Lock()


@contextmanager
def setup_lock(url: str | None) -> Iterator[None]:
    """Serialize schema setup across processes (and threads) opening the same database.

    PostgreSQL: an advisory lock. SQLite: a POSIX record lock on the lock file (flock, which
    the writers hold, is a separate kind of lock, so a running server does not block this).
    If the database cannot be reached the block runs unlocked, so opening it reports the real reason.
    """
    try:
        parsed = parse_url(url)
        backend = backend_for(parsed)
    except BadDatabaseURL:
        with _setup_threads:
            yield  # opening it will say what is wrong with the URL
        return
    with _setup_threads, backend.location.setup_lock(parsed):
        yield


class WriterLock:
    """The shared lock an open ledger holds; `exclusive()` for operations that need the ledger alone."""

    def __init__(self, store: Store) -> None:
        self._lock = store.backend.location.shared_lock(store)

    def check_file(self) -> None:
        """Raise LedgerFileReplaced if the SQLite path no longer names the file this process opened."""
        self._lock.check_file()

    @contextmanager
    def exclusive(self, what: str) -> Iterator[None]:
        """Run the block as the only process with the ledger open, or raise LedgerInUse at once."""
        if not self._lock.try_exclusive():
            raise LedgerInUse(
                f"cannot {what}: another process (a running `ledger serve`?) has this ledger open; stop it and try again"
            )
        try:
            yield
        finally:
            self._lock.back_to_shared()

    def close(self) -> None:
        self._lock.close()
