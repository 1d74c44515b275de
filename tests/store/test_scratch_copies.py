"""Scratch copies (`sqlite://` ledgers) hold personal data: none survives a crash; a past view makes none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger import IdentityLedger
from ledger.errors import ReadAbandoned
from ledger.store import scratch
from tests.helpers import event

VICTIM = "victim-58@example.org"
#: A private scratch ledger (`sqlite://`) holding the victim, kept open until the process is killed.
SCRATCH_LEDGER = """
import sys, time
from ledger import IdentityLedger
lg = IdentityLedger("sqlite://")
lg.ingest([{"event_type": "x", "device_id": "device-victim", "user_id": sys.argv[2]}])
print("stored", flush=True)
time.sleep(120)
"""


@pytest.fixture
def scratch_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scratch directory of this test only (child processes inherit it)."""
    where = tmp_path / "scratch"
    monkeypatch.setenv(scratch.SCRATCH_DIR_VARIABLE, str(where))
    return where


def copies(where: Path) -> list[Path]:
    return sorted(where.iterdir()) if where.exists() else []


def holds(copy: Path, text: str) -> bool:
    return any(text.encode() in path.read_bytes() for path in copy.iterdir() if path.is_file())


def a_ledger_with_a_victim(url: str) -> None:
    with IdentityLedger(url) as lg:
        lg.ingest([event(f"device-{i}", f"user-{i}@example.org") for i in range(30)]
                  + [event("device-victim", VICTIM)])


@dataclass
class Crashes:
    url: str  # the ledger the replays read
    crash: Callable[[], Path]  # runs a scratch ledger in another process, kills it (-9): the copy left behind


@pytest.fixture
def crashed(new_url: Callable[[], str], scratch_dir: Path) -> Crashes:
    url = new_url()
    a_ledger_with_a_victim(url)

    def crash() -> Path:
        before = set(copies(scratch_dir))
        child = subprocess.Popen([sys.executable, "-c", SCRATCH_LEDGER, url, VICTIM], stdout=subprocess.PIPE,
                                 env={**os.environ, "PYTHONPATH": os.getcwd()})
        try:
            deadline = time.monotonic() + 60
            while not [copy for copy in set(copies(scratch_dir)) - before if holds(copy, VICTIM)]:
                assert child.poll() is None and time.monotonic() < deadline, "the scratch ledger never stored the victim"
                time.sleep(0.05)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)  # reaped: its PID is gone
        [left] = set(copies(scratch_dir)) - before
        assert left.name.startswith(f"pid{child.pid}-") and holds(left, VICTIM)
        return left

    return Crashes(url, crash)


def test_opening_a_ledger_removes_the_copies_a_crash_left(crashed: Crashes, new_url: Callable[[], str],
                                                         scratch_dir: Path) -> None:
    left = crashed.crash()
    with IdentityLedger(new_url()):  # any ledger of this user: the copy is named after its dead owner
        assert not left.exists()
    assert copies(scratch_dir) == []


def test_a_deletion_job_removes_them_too(crashed: Crashes, scratch_dir: Path,
                                         open_ledger: Callable[..., IdentityLedger]) -> None:
    lg = open_ledger(crashed.url)
    left = crashed.crash()  # after the open, so only the job can remove it
    assert left.exists()
    lg.forget(user_ids=[VICTIM], requester="dpo", now=True)
    assert copies(scratch_dir) == []


def test_copies_of_running_processes_are_kept(open_ledger: Callable[..., IdentityLedger], scratch_dir: Path) -> None:
    lg = open_ledger()
    lg.ingest([event("device-1", VICTIM)])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = scratch.scratch_root() / f"pid{sleeper.pid}-abc"
        theirs.mkdir()
        stranger = scratch.scratch_root() / "not-a-scratch-copy"
        stranger.mkdir()
        with IdentityLedger("sqlite://") as scratch_ledger:
            scratch_ledger.ingest([event("device-1", VICTIM)])
            [ours] = [copy for copy in copies(scratch_dir) if copy.name.startswith(f"pid{os.getpid()}-")]
            assert scratch.remove_stale() == []
            assert scratch_ledger.resolve(user_id=VICTIM) is not None
        assert not ours.exists()  # closing the ledger deletes it
        assert sorted(copies(scratch_dir)) == sorted([theirs, stranger])
    finally:
        sleeper.kill()
        sleeper.wait()
    assert scratch.remove_stale() == [str(theirs)] and copies(scratch_dir) == [stranger]


def test_a_scratch_directory_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv(scratch.SCRATCH_DIR_VARIABLE, str(shared))
    with pytest.raises(scratch.ScratchDirUnsafe, match="mode 0700"):
        scratch.new_scratch_dir()
    assert scratch.remove_stale() == []  # nothing of ours can be there


def test_a_past_view_makes_no_copy_and_replays_nothing(open_ledger: Callable[..., IdentityLedger],
                                                        scratch_dir: Path) -> None:
    lg = open_ledger()
    lg.ingest([event(f"device-{i}", f"user-{i}@example.org") for i in range(30)])
    middle = lg.position
    lg.ingest([event("device-late", VICTIM)])
    pages: list[int] = []
    read = lg._context.log.read

    def counted(*args: int) -> list:
        pages.append(args[0])
        return read(*args)

    lg._context.log.read = counted  # type: ignore[method-assign]
    with lg.as_of(middle, threading.Event()) as view:
        assert view.resolve(user_id="user-29@example.org") is not None and view.resolve(user_id=VICTIM) is None
    assert pages == [] and copies(scratch_dir) == []
    cancelled = threading.Event()
    cancelled.set()  # its reader has gone before it started
    with pytest.raises(ReadAbandoned):
        lg.as_of(middle, cancelled)
