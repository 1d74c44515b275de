"""The durable log between ingest servers and writers: one NATS JetStream stream per project.

`BufferConfig` is what `--buffer nats://HOST:PORT[,nats://HOST2:PORT][?prefix=P&replicas=N]`
says; `NatsLink` is one NATS connection running on its own event-loop thread, so the
ledger's plain (threaded) code can publish and fetch without becoming async.
A message is one validated request (`BufferedRequest`, msgpack), its stream sequence
the request's place in the project's order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Coroutine, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec
import nats
import nats.errors
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from ledger.domain.calls import Call
from ledger.errors import BufferUnavailable, LedgerError

#: How long JetStream remembers a Nats-Msg-Id: a request retried within it is stored once.
DUPLICATE_WINDOW_S = 15 * 60
FORMAT = "1"
FORMAT_HEADER = "Ledger-Format"
_PREFIX = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

T = TypeVar("T")


class BufferedRequest(msgspec.Struct, frozen=True, array_like=True):
    """One accepted request as it travels: its receipt time and its validated calls."""

    server_time: int
    calls: list[Call]


encode_request = msgspec.msgpack.Encoder().encode
decode_request = msgspec.msgpack.Decoder(BufferedRequest).decode


class BadBufferURL(LedgerError, ValueError):
    """`--buffer` names no usable NATS JetStream log; the message says what to pass."""


@dataclass(frozen=True)
class BufferConfig:
    """Where the log is and how its streams are named and replicated."""

    servers: tuple[str, ...]
    prefix: str = "LEDGER"
    replicas: int = 1

    @classmethod
    def from_url(cls, url: str) -> BufferConfig:
        """`nats://127.0.0.1:4222`, several comma-separated, optional `?prefix=P&replicas=N`."""
        base, _, query = url.partition("?")
        servers = tuple(server.strip() for server in base.split(",") if server.strip())
        if not servers or any(urlsplit(server).scheme not in ("nats", "tls") for server in servers):
            raise BadBufferURL(f"not a NATS URL: {url!r} (use nats://HOST:PORT)")
        options = {name: values[-1] for name, values in parse_qs(query).items()}
        unknown = set(options) - {"prefix", "replicas"}
        if unknown:
            raise BadBufferURL(f"unknown buffer option {sorted(unknown)[0]!r} (use prefix, replicas)")
        prefix = options.get("prefix", cls.prefix)
        if not _PREFIX.match(prefix):
            raise BadBufferURL(f"bad stream prefix {prefix!r}: use 1-32 letters, digits, - or _")
        replicas = options.get("replicas", "1")
        if replicas not in ("1", "2", "3", "4", "5"):
            raise BadBufferURL(f"replicas must be 1 to 5, not {replicas!r}")
        return cls(servers, prefix, int(replicas))

    def stream(self, project: str) -> str:
        return f"{self.prefix}_{project}"

    def subject(self, project: str) -> str:
        return f"{self.prefix}.{project}"

    def stream_config(self, project: str) -> StreamConfig:
        """File storage, replicated, deduplicating; full means refuse (503), never drop unapplied requests."""
        return StreamConfig(
            name=self.stream(project),
            subjects=[self.subject(project)],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            duplicate_window=DUPLICATE_WINDOW_S,
            discard=DiscardPolicy.NEW,
        )


class NatsLink:
    """One NATS connection on a private event loop; `call` runs a coroutine there and waits.

    `close` is bounded and may come from any thread: calls still waiting then raise
    `ConnectionClosedError` at once, as they would had the server gone away, so a writer
    blocked on NATS cannot hold up its process's shutdown.
    """

    def __init__(self, buffer: BufferConfig, connect_timeout: float = 5.0) -> None:
        self.buffer = buffer
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats", daemon=True)
        self._thread.start()
        self._guard = threading.Lock()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._closed = False
        try:
            self.nc = self.call(nats.connect(servers=list(buffer.servers), max_reconnect_attempts=-1,
                                             reconnect_time_wait=0.25, connect_timeout=connect_timeout,
                                             allow_reconnect=True), connect_timeout * 2)
        except BaseException as error:
            self._stop(connect_timeout)
            raise BufferUnavailable(f"cannot reach NATS at {','.join(buffer.servers)}: {error or type(error).__name__}") \
                from error
        self.js = self.nc.jetstream()

    def call(self, work: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `work` on the link's loop; a call that times out or is closed under is cancelled there too."""
        with self._guard:
            if self._closed:
                work.close()
                raise nats.errors.ConnectionClosedError
            future = asyncio.run_coroutine_threadsafe(work, self._loop)
            self._pending.add(future)
        try:
            return future.result(timeout)
        except concurrent.futures.CancelledError:
            raise nats.errors.ConnectionClosedError from None
        finally:
            future.cancel()  # a no-op once done; otherwise the coroutine must not outlive its caller
            with self._guard:
                self._pending.discard(future)

    def ensure_stream(self, project: str) -> None:
        """Create the project's stream if it does not exist yet (servers and writers all may)."""

        async def ensure() -> None:
            try:
                await self.js.stream_info(self.buffer.stream(project))
            except NotFoundError:
                await self.js.add_stream(self.buffer.stream_config(project))

        self.call(ensure(), 30)

    def last_sequence(self, project: str) -> int:
        """The sequence of the last request stored in the project's stream."""
        info = self.call(self.js.stream_info(self.buffer.stream(project)), 5)
        return info.state.last_seq

    def close(self, timeout: float = 5.0) -> None:
        """Cancel waiting calls, close the connection and stop the loop, in `timeout` seconds at most."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            waiting = list(self._pending)
        for future in waiting:
            future.cancel()
        deadline = time.monotonic() + timeout
        try:
            asyncio.run_coroutine_threadsafe(self.nc.close(), self._loop).result(timeout)
        except (concurrent.futures.TimeoutError, nats.errors.Error):
            pass  # a connection that cannot close cleanly in time is dropped with its loop
        finally:
            self._stop(max(0.0, deadline - time.monotonic()))

    def _stop(self, timeout: float) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> NatsLink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
