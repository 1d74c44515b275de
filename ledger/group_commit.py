"""Group commit: requests that queue up while a commit is under way are stored together.

Each request stays all-or-nothing and calls are resolved in queue order. One thread at a
time leads: it takes the writer `lock`, stores everything queued (up to
`GROUP_COMMIT_CALLS` calls) in one transaction and hands every waiting request its own
outcome; requests that arrive meanwhile wait for the leader instead of for the lock, so the
next leader finds them all queued and stores them in one transaction too. A caller returns
only once the transaction holding its request has committed. If that transaction fails,
each request is stored alone, so one bad request fails by itself.

Callers prepare (validate) their request inside `submit`, so a leader knows who is on the
way. Before it takes the queue it waits, at most `GATHER_S`, for callers still preparing and
for as many requests as were in flight when the previous batch was stored (that batch, the
queue behind it and the callers preparing): under steady concurrent traffic the callers of one
commit return with their next requests within a millisecond, and waiting for them makes one
commit of what would be two, rather than two groups taking turns. A lone caller never waits,
and when traffic thins the wait ends at `GATHER_S` once, after which the smaller batch sets
the new expectation (PostgreSQL's `commit_delay` likewise applies only when other
transactions are active).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

#: Queued requests are stored together up to this many calls per transaction.
GROUP_COMMIT_CALLS = 10_000
#: The longest a leader waits for requests on their way (callers preparing; as many as were in flight at the last commit).
GATHER_S = 0.003

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
        guard = threading.Lock()
        self._turn = threading.Condition(guard)  # callers wait on it for their outcome or the lead
        self._arrival = threading.Condition(guard)  # the leader waits on it for requests on their way
        self._queue: deque[Pending[R, T]] = deque()
        self._queued_calls = 0
        self._preparing = 0
        self._expected = 1  # requests in flight when the previous batch was stored: what a leader waits for
        self._leading = False

    def submit(self, prepare: Callable[[], tuple[R, int]]) -> T:
        """Prepare a request (`prepare() -> (request, calls)`; its errors are raised as they are),
        queue it, and return its result once a commit holding it is durable."""
        with self._turn:
            self._preparing += 1
        try:
            request, calls = prepare()
        except BaseException:
            with self._turn:
                self._preparing -= 1
                self._arrival.notify()
            raise
        pending: Pending[R, T] = Pending(request, calls)
        with self._turn:
            self._preparing -= 1
            self._queue.append(pending)
            self._queued_calls += calls
            self._arrival.notify()
            while pending.outcome is None and self._leading:
                self._turn.wait()
            leads = pending.outcome is None
            self._leading = self._leading or leads
        if leads:
            self._lead(pending)
        if isinstance(pending.outcome, BaseException):
            raise pending.outcome
        assert pending.outcome is not None
        return pending.outcome

    def _lead(self, pending: Pending[R, T]) -> None:
        """Store queued batches until `pending` has its outcome, waking the callers of each batch."""
        try:
            while pending.outcome is None:
                self._gather()
                with self.lock:
                    self._store_queued()
                    with self._turn:
                        self._turn.notify_all()
        finally:
            with self._turn:
                self._leading = False
                self._turn.notify_all()

    def _store_queued(self) -> None:
        with self._turn:
            batch: list[Pending[R, T]] = []
            calls = 0
            while self._queue and (not batch or calls + self._queue[0].calls <= GROUP_COMMIT_CALLS):
                batch.append(self._queue.popleft())
                calls += batch[-1].calls
            self._queued_calls -= calls
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
        with self._turn:
            self._expected = len(batch) + len(self._queue) + self._preparing

    def _gather(self) -> None:
        """Wait up to `GATHER_S` for callers preparing and for as many requests as were in flight at the last commit."""
        with self._turn:
            deadline = time.monotonic() + GATHER_S
            while ((self._preparing or len(self._queue) < self._expected)
                   and self._queued_calls < GROUP_COMMIT_CALLS):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._arrival.wait(left)

    def _store_alone(self, waiting: Pending[R, T]) -> None:
        try:
            waiting.outcome = self._store([waiting.request])[0]
        except Exception as error:
            waiting.outcome = error
