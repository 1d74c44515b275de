"""`ledger serve` runs due deletion jobs itself: at start, then at its interval, project by project."""

from __future__ import annotations

import time
from typing import Callable

from ledger import IdentityLedger
from ledger.deleting import day_of
from ledger.server.registry import Projects
from ledger.server.scheduler import deletion_schedule, run_due_jobs
from tests.helpers import Clock, event

DAY_MS = 24 * 3600 * 1000


def _ledger_with_a_job_due_tomorrow(open_ledger: Callable[..., IdentityLedger], clock: Clock) -> IdentityLedger:
    lg = open_ledger(clock=clock)
    lg.ingest([event("device-alice", "alice@example.org"), event("device-bob", "bob@example.org")])
    lg.forget(user_ids=["alice@example.org"], requester="dpo")
    return lg


def test_due_jobs_run_and_jobs_not_yet_due_wait(open_ledger: Callable[..., IdentityLedger]) -> None:
    clock = Clock()
    lg = _ledger_with_a_job_due_tomorrow(open_ledger, clock)
    projects = Projects.single(lg, ["api-key"], "a-secret-of-16-chars")
    assert run_due_jobs(projects) == 0 and lg.resolve(user_id="alice@example.org") is not None
    clock.now += DAY_MS
    assert run_due_jobs(projects) == 1
    assert lg.resolve(user_id="alice@example.org") is None and lg.resolve(user_id="bob@example.org") is not None
    assert run_due_jobs(projects) == 0


def test_the_schedule_runs_due_jobs_in_the_background(open_ledger: Callable[..., IdentityLedger]) -> None:
    clock = Clock()
    lg = _ledger_with_a_job_due_tomorrow(open_ledger, clock)
    clock.now += DAY_MS
    with deletion_schedule(Projects.single(lg, ["api-key"], "a-secret-of-16-chars"), interval=60):
        deadline = time.monotonic() + 30
        while lg.resolve(user_id="alice@example.org") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert lg.resolve(user_id="alice@example.org") is None
    assert [job["status"] for job in lg.deletions(day_of(clock.now), day_of(clock.now))] == ["done"]


def test_interval_zero_leaves_jobs_to_cron(open_ledger: Callable[..., IdentityLedger]) -> None:
    clock = Clock()
    lg = _ledger_with_a_job_due_tomorrow(open_ledger, clock)
    clock.now += DAY_MS
    with deletion_schedule(Projects.single(lg, ["api-key"], "a-secret-of-16-chars"), interval=0):
        pass
    assert lg.resolve(user_id="alice@example.org") is not None

