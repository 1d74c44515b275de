"""Following the log: what other writers stored since we last looked.

Before each request and each read the ledger asks the log for its last position (a
microsecond on SQLite); if it moved, the aggregates and stream heads those events
touched are dropped from the cache (`follow`). Before a write the projections also catch up
(`sync`): reads never write. A deletion job's events
(on its own stream) drop the whole cache: a job rewrites streams in place.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.domain.deletions import DeletionJob
from ledger.store.aggregate_cache import AggregateCache
from ledger.store.event_log import EventLog
from projections.runner import ProjectionRunner

LOG_PAGE = 5000


class LogFollower:
    """Keeps the cache and the projections in step with the log, up to `seen`."""

    def __init__(self, log: EventLog, cache: AggregateCache, runner: ProjectionRunner,
                 check_file: Callable[[], None]) -> None:
        self._log = log
        self._check_file = check_file
        self._cache = cache
        self._runner = runner
        self.seen = log.latest()

    def follow(self) -> int:
        """Follow other writers into the cache (drop what they changed); returns the log's last position.

        Writes nothing: a read follows. First `check_file`: a SQLite file deleted or replaced
        under us raises, so nothing is written into (or read from) a file nobody will open again.
        """
        self._check_file()
        latest = self._log.latest()
        if self.seen < latest:
            self._cache.forget_absent()
        while self.seen < latest:
            originators = self._log.originators(self.seen, latest, LOG_PAGE)
            if not originators:
                break
            if any(DeletionJob.is_job_stream(originator_id) for _, originator_id in originators):
                self._cache.clear()  # a job may have erased or rewritten streams without new positions
            else:
                self._cache.evict(originator_id for _, originator_id in originators)
            self.seen = originators[-1][0]
        self.seen = max(self.seen, latest)
        return latest

    def sync(self) -> int:
        """`follow`, then catch the read side up to the log: the writer's path, before and after it writes."""
        latest = self.follow()
        if self._runner.position < latest:
            self._runner.catch_up(latest)
        return latest

    def stored(self, first: int, last: int) -> None:
        """We stored positions first..last ourselves: nothing to evict if they follow what we saw."""
        if first == self.seen + 1:
            self.seen = last
        else:
            self.sync()
