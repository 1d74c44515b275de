"""Group commit: callers that wait together share one transaction, and a lone caller never waits.

`GroupCommit` is driven here with a recording `store`, so what each transaction held is
known exactly; `tests/store/test_concurrent_writers.py` drives it through the ledger.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ledger import group_commit
from ledger.group_commit import GroupCommit


class Recorder:
    """A store that records each batch; `hold` keeps a batch from finishing until set."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.storing = threading.Event()

    def __call__(self, batch: list[str]) -> list[str]:
        self.storing.set()
        self.hold.wait(10)
        self.batches.append(batch)
        return [f"stored {request}" for request in batch]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def commits(recorder: Recorder) -> GroupCommit[str, str]:
    return GroupCommit(recorder, threading.RLock())


def prepared(request: str, ready: threading.Event | None = None) -> Callable[[], tuple[str, int]]:
    def prepare() -> tuple[str, int]:
        if ready is not None:
            ready.wait(10)
        return request, 1

    return prepare


@pytest.fixture
def long_gather(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(group_commit, "GATHER_S", 30.0)
    yield


def submit_in_thread(commits: GroupCommit[str, str], prepare: Callable[[], tuple[str, int]],
                     results: dict[str, str]) -> threading.Thread:
    def run() -> None:
        outcome = commits.submit(prepare)
        results[outcome.split()[-1]] = outcome

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_lone_caller_never_waits_for_others(commits: GroupCommit[str, str], recorder: Recorder,
                                              long_gather: None) -> None:
    started = time.monotonic()
    assert [commits.submit(prepared(f"r{n}")) for n in range(3)] == ["stored r0", "stored r1", "stored r2"]
    assert time.monotonic() - started < 5  # the gather window is 30 s: nobody waited for it
    assert recorder.batches == [["r0"], ["r1"], ["r2"]]


def test_requests_queued_during_a_commit_share_the_next_one(commits: GroupCommit[str, str], recorder: Recorder,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Six were in flight at the first commit, and r0's caller does not come back: the next leader
    # waits one window for it, kept short here.
    monkeypatch.setattr(group_commit, "GATHER_S", 0.05)
    results: dict[str, str] = {}
    recorder.hold.clear()
    first = submit_in_thread(commits, prepared("r0"), results)
    assert recorder.storing.wait(10)  # r0 is being stored; the next ones queue behind it
    others = [submit_in_thread(commits, prepared(f"r{n}"), results) for n in range(1, 6)]
    wait_until(lambda: len(commits._queue) == 5)
    recorder.hold.set()
    for thread in [first, *others]:
        thread.join(10)
    assert recorder.batches[0] == ["r0"]
    assert sorted(recorder.batches[1]) == [f"r{n}" for n in range(1, 6)]  # one transaction for all five
    assert results == {f"r{n}": f"stored r{n}" for n in range(6)}


def test_a_leader_waits_for_callers_still_preparing(commits: GroupCommit[str, str], recorder: Recorder,
                                                     long_gather: None) -> None:
    results: dict[str, str] = {}
    ready = threading.Event()
    slow = [submit_in_thread(commits, prepared(f"slow{n}", ready), results) for n in range(3)]
    wait_until(lambda: commits._preparing == 3)
    leader = submit_in_thread(commits, prepared("quick"), results)
    time.sleep(0.05)
    assert recorder.batches == []  # the leader waits for the three on their way
    ready.set()
    for thread in [leader, *slow]:
        thread.join(10)
    assert [sorted(batch) for batch in recorder.batches] == [["quick", "slow0", "slow1", "slow2"]]
    assert len(results) == 4


def test_when_traffic_thins_a_leader_waits_one_window_then_expects_fewer(
        commits: GroupCommit[str, str], recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_commit, "GATHER_S", 0.2)
    results: dict[str, str] = {}
    recorder.hold.clear()
    first = submit_in_thread(commits, prepared("r0"), results)
    assert recorder.storing.wait(10)
    queued = [submit_in_thread(commits, prepared(f"r{n}"), results) for n in range(1, 4)]
    wait_until(lambda: len(commits._queue) == 3)
    recorder.hold.set()
    for thread in [first, *queued]:
        thread.join(10)
    assert len(recorder.batches[-1]) == 3  # the last batch held three: a leader now expects three
    started = time.monotonic()
    commits.submit(prepared("alone"))
    waited = time.monotonic() - started
    started = time.monotonic()
    commits.submit(prepared("alone again"))
    assert waited >= 0.2 > time.monotonic() - started  # one window waited, then none


def test_a_failing_preparation_is_raised_and_leaves_no_one_waiting(commits: GroupCommit[str, str],
                                                                  recorder: Recorder, long_gather: None) -> None:
    def refused() -> tuple[str, int]:
        raise ValueError("bad request")

    with pytest.raises(ValueError, match="bad request"):
        commits.submit(refused)
    assert commits.submit(prepared("next")) == "stored next"
    assert recorder.batches == [["next"]]


def test_a_request_whose_store_fails_fails_alone(recorder: Recorder, long_gather: None) -> None:
    def store(batch: list[str]) -> list[str]:
        if "bad" in batch:
            raise ValueError("refused")
        return recorder(batch)

    commits: GroupCommit[str, str] = GroupCommit(store, threading.RLock())
    results: dict[str, str] = {}
    failures: list[BaseException] = []
    lock = threading.RLock()
    commits.lock = lock

    def bad() -> None:
        try:
            commits.submit(prepared("bad"))
        except ValueError as error:
            failures.append(error)

    with lock:  # hold the writer so the three queue for one transaction
        threads = [submit_in_thread(commits, prepared("a"), results), threading.Thread(target=bad),
                   submit_in_thread(commits, prepared("b"), results)]
        threads[1].start()
        wait_until(lambda: len(commits._queue) == 3)
    for thread in threads:
        thread.join(10)
    assert results == {"a": "stored a", "b": "stored b"}
    assert [str(error) for error in failures] == ["refused"]
