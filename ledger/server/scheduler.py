"""Deletion jobs run by the server itself: every project's due jobs, checked at a fixed interval.

A deletion request filed over HTTP joins the next UTC day's job; without this the job would
wait for `ledger deletions --run` from cron. The thread only calls `run_deletions()`, which takes
the ledger's writer path like any request, so it needs no coordination of its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.server.registry import Projects

log = logging.getLogger("ledger.server")


def run_due_jobs(projects: Projects) -> int:
    """Run every project's due deletion jobs; returns how many ran. A failing project is logged, not fatal."""
    ran = 0
    for project in projects.projects:
        try:
            runs = project.ledger.run_deletions()
        except Exception as error:
            # The error's type only: a database error's text can quote the values of a row, i.e. an ID.
            log.error("deletion jobs of project %s: failed (%s), retried in the next check",
                      project.name, type(error).__name__)
            continue
        for run in runs:  # the count of people, never their IDs: the log outlives the people
            log.info("deletion job %s of project %s: done, %d %s forgotten, disk reclaimed: %s", run.day,
                     project.name, len(run.amplitude_ids), "person" if len(run.amplitude_ids) == 1 else "people",
                     "yes" if run.reclaimed else "no")
        ran += len(runs)
    return ran


@contextmanager
def deletion_schedule(projects: Projects, interval: float) -> Iterator[None]:
    """Check for due jobs at start and then every `interval` seconds until the block ends (0: never)."""
    if interval <= 0:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        while True:
            run_due_jobs(projects)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=loop, name="deletion-jobs", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
