"""How long a request stays in the stream once the writer has applied it.

A stored request is personal data (user IDs, device IDs, properties), so an applied one must
not outlive its purpose. It still has one purpose for a while: JetStream recognises a client's
retry by its `Nats-Msg-Id` for the duplicate window, and a node that restarts rebuilds that
memory from the messages it still stores. So the writer purges what it applied once the
window has passed since (`RoutinePurge`: exactly once holds across node restarts), and a
deletion job can erase everything applied at once (`erase_applied`), overwriting the messages
in the store files, at the price stated in docs/privacy.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import nats.errors
import nats.js.errors

from ledger.buffer.stream import DUPLICATE_WINDOW_S, NatsLink

#: How often the writer purges: one API call per interval, whatever the traffic.
PURGE_EVERY_S = 10.0
#: A purge must not hold the writer up for long while the stream has no leader.
PURGE_TIMEOUT_S = 2.0
#: Secure deletes in flight at once during an erase.
ERASE_CONCURRENCY = 64
log = logging.getLogger("ledger.apply")


class RoutinePurge:
    """The writer's purge: everything applied more than a duplicate window ago leaves the stream."""

    def __init__(self, link: NatsLink, stream: str, applied: int, *, keep_s: float = DUPLICATE_WINDOW_S) -> None:
        self.link = link
        self.stream = stream
        self.keep_s = keep_s
        self._applied: deque[tuple[float, int]] = deque([(time.monotonic(), applied)])
        self._next = time.monotonic()

    def applied(self, sequence: int) -> None:
        """Note that the ledger now holds every request up to `sequence`; purge when it is time."""
        now = time.monotonic()
        self._applied.append((now, sequence))
        if now < self._next:
            return
        self._next = now + PURGE_EVERY_S
        through = 0
        while self._applied and self._applied[0][0] <= now - self.keep_s:
            through = self._applied.popleft()[1]
        if through:
            try:
                self.link.call(self.link.js.purge_stream(self.stream, seq=through + 1), PURGE_TIMEOUT_S)
            except (nats.errors.Error, TimeoutError) as error:  # no leader now: the next purge covers these too
                log.warning("%s: purge through %d failed (%s); trying again later", self.stream, through,
                            type(error).__name__)


@dataclass(frozen=True)
class BufferErased:
    """What `erase_applied` did: the stream holds no request at or below `through` any more."""

    stream: str
    through: int
    erased: int
    unapplied: int

    def describe(self) -> str:
        return (f"{self.stream}: erased {self.erased} applied requests from the store (the buffer holds nothing "
                f"up to sequence {self.through}); {self.unapplied} requests not applied yet remain")


def erase_applied(link: NatsLink, project: str, through: int) -> BufferErased:
    """Erase every request up to `through` (the ledger's applied sequence) that the stream still holds.

    Each is deleted with JetStream's secure erase, which overwrites it in the store files:
    a plain purge leaves the bytes of a partly purged block on disk until the block goes."""
    stream = link.buffer.stream(project)
    try:
        state = link.stream_state(project, 10)
    except nats.js.errors.NotFoundError:
        return BufferErased(stream, through, 0, 0)  # no stream: it never held anything
    sequences = range(state.first_seq, min(through, state.last_seq) + 1)

    async def erase(sequence: int, slots: asyncio.Semaphore) -> int:
        async with slots:
            try:
                return int(await link.js.delete_msg(stream, sequence))
            except nats.js.errors.NotFoundError:
                return 0  # already gone: a gap, or purged meanwhile by the writer
            except nats.js.errors.BadRequestError:
                return 0  # "no message found" on servers that answer 400

    async def erase_all() -> int:
        slots = asyncio.Semaphore(ERASE_CONCURRENCY)
        return sum(await asyncio.gather(*(erase(sequence, slots) for sequence in sequences)))

    erased = link.call(erase_all(), 60 + len(sequences) / 100) if sequences else 0
    if through >= state.first_seq:
        link.call(link.js.purge_stream(stream, seq=through + 1), 10)
    remaining = link.stream_state(project, 10)
    return BufferErased(stream, through, erased, remaining.messages)

