"""`ledger apply`: the identity writer of one project, applying its stream in order, exactly once.

Each request is stored with its stream sequence as its `applied` marker, in the same
transaction (`IdentityLedger.store_accepted`). The ledger, not the NATS consumer, is the
authority on where to resume: on start (and after any gap) the durable consumer is
recreated at the sequence after the last one stored. A message at or below it was
delivered again (a crash between commit and ack, an ack lost) and is only acknowledged.
Applied requests leave the stream a duplicate window later (`RoutinePurge`): purging never
moves a sequence, so the marker stays valid.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ledger.buffer.publisher import applied_sequence
from ledger.buffer.retention import RoutinePurge
from ledger.buffer.stream import FORMAT, FORMAT_HEADER, NatsLink, decode_request
from ledger.domain.calls import Accepted
from ledger.errors import LedgerError
from ledger.ingesting import Request
from ledger.ledger import IdentityLedger

CONSUMER = "ledger-apply"
FETCH = 256
ACK_WAIT_S = 60.0
log = logging.getLogger("ledger.apply")


class StreamGap(LedgerError):
    """The stream no longer holds requests the ledger has not applied: they were deleted or aged out."""


async def _ack_all(messages: list[Any]) -> None:
    """Acknowledge a fetched batch in one visit to the link's loop (each ack is one publish, not a round trip)."""
    for message in messages:
        await message.ack()


class Writer:
    """Applies one project's stream to its ledger. Hold the project's writer lock while it runs."""

    def __init__(self, ledger: IdentityLedger, link: NatsLink, project: str, *, fetch: int = FETCH) -> None:
        self.ledger = ledger
        self.link = link
        self.project = project
        self.stream = link.buffer.stream(project)
        self.fetch = fetch
        link.ensure_stream(project)
        self.applied = applied_sequence(ledger, self.stream)
        self.retention = RoutinePurge(link, self.stream, self.applied)
        self._subscription: Any = None

    def run(self, stop: threading.Event, idle_s: float = 0.1) -> None:
        """Apply until `stop` is set; survives NATS restarts by subscribing again.

        A fetch returns early only when its batch is full, so `idle_s` bounds how long a
        request can wait for the writer when traffic is light."""
        while not stop.is_set():
            try:
                self.apply_next(idle_s)
            except (nats.errors.TimeoutError, TimeoutError):
                continue  # nothing new
            except nats.errors.Error as error:
                log.warning("project %s: NATS: %s; subscribing again", self.project, error)
                self._drop_subscription()
                stop.wait(0.5)

    def apply_available(self, idle_s: float = 0.5) -> int:
        """Apply until the stream has nothing more for `idle_s`; returns how many requests were applied."""
        before = self.applied
        while True:
            try:
                self.apply_next(idle_s)
            except (nats.errors.TimeoutError, TimeoutError):
                return self.applied - before

    def apply_next(self, timeout_s: float) -> int:
        """Fetch and apply the next batch of requests; raises a NATS timeout when there is none."""
        if self._subscription is None:
            self._subscribe()
        messages = self.link.call(self._subscription.fetch(self.fetch, timeout=timeout_s), timeout_s + 5)
        batch: list[tuple[int, Any]] = []
        settled: list[Any] = []
        gap = False
        for message in messages:
            sequence = message.metadata.sequence.stream
            if sequence > self.applied + len(batch) + 1:
                gap = True  # an earlier message is being redelivered: start again after ours
                break
            if sequence == self.applied + len(batch) + 1:
                batch.append((sequence, message))
            settled.append(message)
        if batch:
            self._apply(batch)
        if settled:
            self.link.call(_ack_all(settled), 10)
        if batch:
            self.retention.applied(self.applied)
        if gap:
            self._check_gap()
            self._drop_subscription()
        return len(batch)

    def _apply(self, batch: list[tuple[int, Any]]) -> None:
        """Store the fetched requests in order and in one transaction, each with its stream marker."""
        requests = []
        for sequence, message in batch:
            if (message.headers or {}).get(FORMAT_HEADER) != FORMAT:
                raise LedgerError(f"project {self.project}: message {sequence} has an unknown format; stopping")
            request = decode_request(message.data)
            requests.append(Request(Accepted(request.calls, []), request.server_time, (self.stream, sequence)))
        self.ledger.store_accepted(requests)
        self.applied = batch[-1][0]

    def _subscribe(self) -> None:
        """A fresh durable consumer starting right after the last request the ledger holds."""

        async def subscribe() -> Any:
            with contextlib.suppress(NotFoundError):
                await self.link.js.delete_consumer(self.stream, CONSUMER)
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.applied + 1,
                                    ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_S, max_ack_pending=self.fetch)
            return await self.link.js.pull_subscribe(self.link.buffer.subject(self.project), durable=CONSUMER,
                                                     stream=self.stream, config=config)

        self._subscription = self.link.call(subscribe(), 30)
        log.info("project %s: applying from stream sequence %d", self.project, self.applied + 1)

    def _drop_subscription(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                self.link.call(subscription.unsubscribe(), 5)
            except (nats.errors.Error, TimeoutError):
                pass  # the connection is gone, and the subscription with it

    def _check_gap(self) -> None:
        info = self.link.call(self.link.js.stream_info(self.stream), 10)
        if info.state.first_seq > self.applied + 1:
            raise StreamGap(f"project {self.project}: the stream starts at {info.state.first_seq} but the ledger "
                            f"applied up to {self.applied}: requests {self.applied + 1}.. are gone")
        time.sleep(0.05)
