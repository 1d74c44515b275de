"""`ledger serve` runs due deletion jobs itself: at start, then at its interval, project by project."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from ledger import IdentityLedger
from ledger.deleting import day_of
from ledger.server import access_log
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



def test_each_job_run_is_logged_with_its_day_count_and_status_never_the_ids(
        open_ledger: Callable[..., IdentityLedger], caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    lg = _ledger_with_a_job_due_tomorrow(open_ledger, clock)
    clock.now += DAY_MS
    with caplog.at_level(logging.INFO, logger="ledger.server"):
        assert run_due_jobs(Projects.single(lg, ["api-key"], "a-secret-of-16-chars")) == 1
    [line] = [record.getMessage() for record in caplog.records if record.name == "ledger.server"]
    assert line == f"deletion job {day_of(clock.now)} of project default: done, 1 person forgotten, disk reclaimed: yes"


class _Failing:
    def run_deletions(self) -> None:
        raise RuntimeError('duplicate key value violates unique constraint: Key (user_id)=(alice@example.org)')


def test_a_failing_job_is_logged_without_the_errors_text(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ledger.server"):
        assert run_due_jobs(Projects.single(_Failing(), ["api-key"], "a-secret-of-16-chars")) == 0
    assert [record.getMessage() for record in caplog.records] == [
        "deletion jobs of project default: failed (RuntimeError), retried in the next check"]
    assert "alice" not in caplog.text


def test_the_server_shows_its_job_lines_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with access_log.to_stderr():
        logging.getLogger("ledger.server").info("deletion job 2026-12-07 of project web: done")
    logging.getLogger("ledger.server").info("after the server stopped")
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "INFO ledger.server: deletion job 2026-12-07 of project web: done")
