"""The ingest side of the buffered deployment: validate as the ledger does, then publish.

`BufferedLedger` stands where a project's `IdentityLedger` stands in the server: uploads
are validated exactly as `IdentityLedger.ingest` / `identify` validate them (same
refusals, byte for byte) and answered once JetStream has stored them; every read goes
to the project's database, and `stats()` adds how far the writer is behind the stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from typing import Any

import msgspec
import nats.errors
import nats.js.errors

from ledger.buffer.stream import FORMAT, FORMAT_HEADER, BufferedRequest, NatsLink, encode_request
from ledger.domain.calls import DEFAULT_MIN_ID_LENGTH, Accepted, accept
from ledger.domain.group_identify import accept_identifications
from ledger.errors import BufferUnavailable
from ledger.ledger import IdentityLedger, IngestReport
from projections.models import Stats

#: How long a request waits for JetStream's acknowledgement before the client is told to retry.
PUBLISH_TIMEOUT_S = 5.0
#: One attempt's wait: a node that died under the request is given up on before the whole budget goes.
ATTEMPT_TIMEOUT_S = 1.5
#: What a publish can meet while a stream leader is being elected or the connection moves to
#: another node: worth trying again, with the same Nats-Msg-Id, until PUBLISH_TIMEOUT_S is spent.
NO_LEADER = (nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError,
             nats.js.errors.ServiceUnavailableError, nats.errors.ConnectionReconnectingError,
             nats.errors.StaleConnectionError, asyncio.TimeoutError, TimeoutError)
_json = msgspec.json.Encoder()


class BufferedStats(Stats, frozen=True, kw_only=True):
    """A buffered project's counts and how far its writer is behind (None: the log did not answer)."""

    applied_sequence: int
    stream_sequence: int | None
    lag: int | None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class BufferedLedger:
    """A project's ledger for an ingest server that publishes uploads instead of storing them."""

    def __init__(self, ledger: IdentityLedger, link: NatsLink, project: str) -> None:
        self._ledger = ledger
        self._link = link
        self._project = project
        self._subject = link.buffer.subject(project)
        self._stream = link.buffer.stream(project)
        link.ensure_stream(project)

    def __getattr__(self, name: str) -> Any:
        """Reads (resolve, timeline, merges, audit, position, as_of...) answer from the database."""
        return getattr(self._ledger, name)

    def ingest(self, events: Iterable[Any], min_id_length: int = DEFAULT_MIN_ID_LENGTH) -> IngestReport:
        events = list(events)
        server_time = _now_ms()
        accepted = accept(events, server_time=server_time, min_id_length=min_id_length)
        return self._publish(accepted, server_time, ("track", min_id_length, events))

    def identify(self, identifications: Iterable[Any], min_id_length: int = DEFAULT_MIN_ID_LENGTH) -> IngestReport:
        identifications = list(identifications)
        server_time = _now_ms()
        accepted = accept(identifications, server_time=server_time, min_id_length=min_id_length, identify=True)
        return self._publish(accepted, server_time, ("identify", min_id_length, identifications))

    def group_identify(self, identifications: Iterable[Any]) -> IngestReport:
        """Group Identify API objects travel as `$groupidentify` calls, applied by the project's writer."""
        identifications = list(identifications)
        server_time = _now_ms()
        accepted = accept_identifications(identifications, server_time)
        return self._publish(accepted, server_time, ("groupidentify", identifications))

    def _publish(self, accepted: Accepted, server_time: int, request: tuple[Any, ...]) -> IngestReport:
        """Store the request in the stream; the Nats-Msg-Id is a digest of the request as sent,
        so a client's retry of a request JetStream already holds is stored once."""
        sequence = 0
        if accepted.calls:
            digest = hashlib.blake2b(_json.encode(request), digest_size=16, person=b"ledger-request").hexdigest()
            headers = {"Nats-Msg-Id": digest, FORMAT_HEADER: FORMAT}
            payload = encode_request(BufferedRequest(server_time, accepted.calls))
            sequence = self._store(payload, headers)
        return IngestReport(ingested=len(accepted.calls), duplicates=0, position=sequence,
                            server_time=server_time, warnings=accepted.warnings)

    def _store(self, payload: bytes, headers: dict[str, str]) -> int:
        """Publish until JetStream acknowledges: its ack comes once the stream's replicas (a majority
        of them) hold the message. While no leader can store, try again with the same Nats-Msg-Id,
        so an attempt that was stored after all is not stored twice."""
        deadline = time.monotonic() + PUBLISH_TIMEOUT_S
        pause = 0.05
        while True:
            attempt = min(ATTEMPT_TIMEOUT_S, max(deadline - time.monotonic(), 0.05))
            try:
                ack = self._link.call(self._link.js.publish(self._subject, payload, timeout=attempt,
                                                            headers=headers), attempt + 0.5)
                return int(ack.seq)
            except NO_LEADER as error:
                if time.monotonic() + pause >= deadline:
                    raise BufferUnavailable(f"the log did not store the request ({type(error).__name__}); "
                                            "retry") from error
            except nats.errors.Error as error:
                raise BufferUnavailable(f"the log did not store the request ({type(error).__name__}); retry") \
                    from error
            time.sleep(pause)
            pause = min(pause * 2, 0.4)

    def stats(self) -> BufferedStats:
        """The project's counts, plus the writer's lag: stream sequences not applied yet."""
        applied = self.applied_sequence()
        try:
            last: int | None = self._link.last_sequence(self._project)
        except (nats.errors.Error, TimeoutError):
            last = None
        lag = None if last is None else max(last - applied, 0)
        counts = msgspec.structs.asdict(self._ledger.stats())
        return BufferedStats(**counts, applied_sequence=applied, stream_sequence=last, lag=lag)

    def applied_sequence(self) -> int:
        return applied_sequence(self._ledger, self._stream)


def applied_sequence(ledger: IdentityLedger, stream: str) -> int:
    """The sequence of the last request of `stream` stored in the ledger (0: none yet)."""
    return ledger.applied(stream) or 0
