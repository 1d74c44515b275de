"""One identity writer per project: a lock held for as long as the writer runs.

PostgreSQL: a session advisory lock keyed by database and schema. SQLite: an exclusive
`flock` on a file beside the database. Both are released by the operating system or the
database server when the process dies, so a standby writer takes over after a crash.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from ledger.errors import LedgerError
from ledger.store.backends import backend_for

POLL_S = 0.2


class WriterBusy(LedgerError):
    """Another writer holds the project; this one was told not to wait."""


class LockWaitAbandoned(LedgerError):
    """The writer was told to stop while it waited for the lock: it never held it."""


@contextmanager
def writer_lock(project: str, db_url: str, *, wait: bool = True,
                until: threading.Event | None = None) -> Iterator[None]:
    """Hold the project's writer lock; waits for it (LockWaitAbandoned once `until` is set),
    or raises WriterBusy with `wait=False`."""
    url = make_url(db_url)
    pause = _pause(project, wait, until or threading.Event())
    with backend_for(url).location.project_lock(url, pause):
        yield


def _pause(project: str, wait: bool, until: threading.Event) -> Callable[[str], None]:
    """What to do each time the lock is found taken (`holder` says where): wait a poll, or give up."""

    def pause(holder: str) -> None:
        if not wait:
            raise WriterBusy(f"another writer applies project {project!r} ({holder} is locked)")
        if until.wait(POLL_S):
            raise LockWaitAbandoned(f"stopped while waiting for the writer lock of project {project!r}")

    return pause
