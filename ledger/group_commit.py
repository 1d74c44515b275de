"""Group commit: requests that queue up while a commit waits for the disk are stored together.

Each request stays all-or-nothing and calls are resolved in queue order; the thread that
gets the writer lock stores everything queued (up to `GROUP_COMMIT_CALLS` calls) in one
transaction and hands every waiting request its own outcome. If that transaction fails,
each request is stored alone, so one bad request fails by itself.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

#: Queued requests are stored together up to this many calls per transaction.
GROUP_COMMIT_CALLS = 10_000

R = TypeVar("R")
T = TypeVar("T")


class Pending(Generic[R, T]):
    """A request waiting for the writer, and then its outcome (its result or its error)."""

    __slots__ = ("calls", "outcome", "request")

    def __init__(self, request: R, calls: int) -> None:
        self.request = request
        self.calls = calls
        self.outcome: T | BaseException | None = None


class GroupCommit(Generic[R, T]):
    """Runs `store(batch) -> results` for queued requests, one batch at a time, under `lock`."""

    def __init__(self, store: Callable[[list[R]], list[T]], lock: threading.RLock) -> None:
        self._store = store
        self.lock = lock
        self._queue_lock = threading.Lock()
        self._queue: deque[Pending[R, T]] = deque()

    def submit(self, request: R, calls: int) -> T:
        pending: Pending[R, T] = Pending(request, calls)
        with self._queue_lock:
            self._queue.append(pending)
        with self.lock:
            while pending.outcome is None:
                self._store_queued()
        if isinstance(pending.outcome, BaseException):
            raise pending.outcome
        return pending.outcome

    def _store_queued(self) -> None:
        with self._queue_lock:
            batch: list[Pending[R, T]] = []
            calls = 0
            while self._queue and (not batch or calls + self._queue[0].calls <= GROUP_COMMIT_CALLS):
                batch.append(self._queue.popleft())
                calls += batch[-1].calls
        try:
            results = self._store([waiting.request for waiting in batch])
        except Exception as error:
            if len(batch) > 1:  # one request's failure must not fail the others queued with it
                for waiting in batch:
                    self._store_alone(waiting)
                return
            batch[0].outcome = error
            return
        except BaseException as error:
            for waiting in batch:
                waiting.outcome = error
            return
        for waiting, result in zip(batch, results, strict=True):
            waiting.outcome = result

    def _store_alone(self, waiting: Pending[R, T]) -> None:
        try:
            waiting.outcome = self._store([waiting.request])[0]
        except Exception as error:
            waiting.outcome = error
