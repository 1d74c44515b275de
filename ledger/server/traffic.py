"""How busy the server has been: calls ingested per minute over the last few minutes, in memory.

The ingest endpoints record every stored request with one call; the explorer reads the
counts. Nothing is persisted: a restarted server starts counting afresh, which is all a
"what is arriving right now" figure needs.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

MINUTES = 10


class IngestMeter:
    """A rolling count of calls ingested, one bucket per wall-clock minute, the last `MINUTES` kept."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: deque[list[int]] = deque()  # [minute, calls], oldest first

    def record(self, calls: int) -> None:
        minute = int(self._clock() // 60)
        with self._lock:
            if self._buckets and self._buckets[-1][0] == minute:
                self._buckets[-1][1] += calls
            else:
                self._buckets.append([minute, calls])
            while self._buckets[0][0] <= minute - MINUTES:
                self._buckets.popleft()

    def per_minute(self) -> list[int]:
        """Calls ingested in each of the last `MINUTES` minutes, oldest first (the last one still running);
        empty when nothing arrived in that time."""
        now = int(self._clock() // 60)
        with self._lock:
            counts = {minute: calls for minute, calls in self._buckets if minute > now - MINUTES}
        if not counts:
            return []
        return [counts.get(minute, 0) for minute in range(now - MINUTES + 1, now + 1)]


_meters: weakref.WeakKeyDictionary[object, IngestMeter] = weakref.WeakKeyDictionary()
_meters_lock = threading.Lock()


def meter(ledger: object) -> IngestMeter:
    """The meter of one ledger (one per project when a server holds several), made on first use."""
    with _meters_lock:
        found = _meters.get(ledger)
        if found is None:
            found = _meters[ledger] = IngestMeter()
        return found
