"""The durable log between ingest servers and writers: one NATS JetStream stream per project.

`BufferConfig` is what `--buffer nats://HOST:PORT[,nats://HOST2:PORT][?prefix=P&replicas=N&max_age=7d]`
says; `NatsLink` is one NATS connection running on its own event-loop thread, so the
ledger's plain (threaded) code can publish and fetch without becoming async.
A message is one validated request (`BufferedRequest`, msgpack), its stream sequence
the request's place in the project's order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec
import nats
import nats.errors
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamState
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError

from ledger.domain.calls import Call
from ledger.errors import BufferUnavailable, LedgerError

#: How long JetStream remembers a Nats-Msg-Id: a request retried within it is stored once.
DUPLICATE_WINDOW_S = 15 * 60
#: How long a request the writer has not applied stays in the stream (applied ones go much sooner).
MAX_AGE_S = 7 * 24 * 3600
#: How long a node may take to answer a read (stats, lag) before the answer is "unknown".
READ_TIMEOUT_S = 0.8
#: How long a starting server or writer waits for JetStream to have a leader (a cluster forming).
READY_TIMEOUT_S = 30.0
#: A node that dies is left for another of the URLs (and the nodes the cluster announces) at
#: once, retried every 0.25 s for ever; one that falls silent is given up after two missed pings.
RECONNECT: dict[str, Any] = {"allow_reconnect": True, "max_reconnect_attempts": -1, "reconnect_time_wait": 0.25,
                             "ping_interval": 5, "max_outstanding_pings": 2}
log = logging.getLogger("ledger.buffer")
#: JetStream's "no suitable peers for placement": a forming cluster that does not know all its nodes yet.
NO_PLACEMENT = 10005
#: "stream name already in use": another process created it between our look and our create.
NAME_IN_USE = 10058
_AGE = re.compile(r"^([1-9][0-9]{0,6})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
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


class StreamRefused(LedgerError):
    """JetStream will not create or update a project's stream as configured (its reason is in the
    message, e.g. replicas=3 on a server that is not part of a cluster)."""


@dataclass(frozen=True)
class BufferConfig:
    """Where the log is and how its streams are named and replicated."""

    servers: tuple[str, ...]
    prefix: str = "LEDGER"
    replicas: int = 1
    max_age_s: int = MAX_AGE_S

    @classmethod
    def from_url(cls, url: str) -> BufferConfig:
        """`nats://127.0.0.1:4222`, several comma-separated, optional `?prefix=P&replicas=N&max_age=7d`."""
        base, _, query = url.partition("?")
        servers = tuple(server.strip() for server in base.split(",") if server.strip())
        if not servers or any(urlsplit(server).scheme not in ("nats", "tls") for server in servers):
            raise BadBufferURL(f"not a NATS URL: {url!r} (use nats://HOST:PORT)")
        options = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
        unknown = set(options) - {"prefix", "replicas", "max_age"}
        if unknown:
            raise BadBufferURL(f"unknown buffer option {sorted(unknown)[0]!r} (use prefix, replicas, max_age)")
        prefix = options.get("prefix", cls.prefix)
        if not _PREFIX.match(prefix):
            raise BadBufferURL(f"bad stream prefix {prefix!r}: use 1-32 letters, digits, - or _")
        replicas = options.get("replicas", "1")
        if replicas not in ("1", "2", "3", "4", "5"):
            raise BadBufferURL(f"replicas must be 1 to 5, not {replicas!r}")
        age = _AGE.match(options.get("max_age", "7d"))
        max_age_s = int(age.group(1)) * _UNITS[age.group(2)] if age else 0
        if max_age_s < 2 * DUPLICATE_WINDOW_S:
            raise BadBufferURL(f"max_age must be a duration of at least 30m, like 7d, 36h or 90m, "
                               f"not {options.get('max_age')!r}")
        return cls(servers, prefix, int(replicas), max_age_s)

    def stream(self, project: str) -> str:
        return f"{self.prefix}_{project}"

    def subject(self, project: str) -> str:
        return f"{self.prefix}.{project}"

    def stream_config(self, project: str) -> StreamConfig:
        """File storage, replicated, deduplicating; full means refuse (503), never drop unapplied requests.

        `max_age` bounds how long a request the writer never applied stays; applied ones are
        purged by the writer (`ledger.buffer.retention`)."""
        return StreamConfig(
            name=self.stream(project),
            subjects=[self.subject(project)],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=self.replicas,
            duplicate_window=DUPLICATE_WINDOW_S,
            discard=DiscardPolicy.NEW,
            max_age=self.max_age_s,
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
            self.nc = self.call(nats.connect(servers=list(buffer.servers), connect_timeout=connect_timeout,
                                             **RECONNECT, **self._callbacks()), connect_timeout * 2)
        except BaseException as error:
            self._stop(connect_timeout)
            raise BufferUnavailable(f"cannot reach NATS at {','.join(buffer.servers)}: {error or type(error).__name__}") \
                from error
        self.js = self.nc.jetstream()

    def _callbacks(self) -> dict[str, Callable[..., Awaitable[None]]]:
        """One log line per connection event, instead of the client's tracebacks on stderr."""

        async def error(problem: Exception) -> None:
            log.warning("NATS: %s", problem or type(problem).__name__)

        async def disconnected() -> None:
            if not self._closed:
                log.warning("NATS: disconnected; reconnecting to one of %s", ",".join(self.buffer.servers))

        async def reconnected() -> None:
            url = self.nc.connected_url
            log.warning("NATS: reconnected to %s", url.netloc if url else "?")

        return {"error_cb": error, "disconnected_cb": disconnected, "reconnected_cb": reconnected}

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

    def ensure_stream(self, project: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Create the project's stream, or bring an existing one to the configured age and replicas.

        Servers and writers all may, at once. A cluster that is still electing its meta leader
        answers nothing or "unavailable": that is waited out, up to `timeout_s`."""
        name, wanted = self.buffer.stream(project), self.buffer.stream_config(project)

        async def ensure() -> None:
            try:
                config = (await self.js.stream_info(name)).config
            except NotFoundError:
                await self.js.add_stream(wanted)
                return
            if (config.max_age, config.num_replicas) != (wanted.max_age, wanted.num_replicas):
                config.max_age, config.num_replicas = wanted.max_age, wanted.num_replicas
                await self.js.update_stream(config)  # streams of older versions had no max_age

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.call(ensure(), max(deadline - time.monotonic(), 0.1))
            except (nats.errors.NoRespondersError, ServiceUnavailableError, TimeoutError, BadRequestError) as error:
                if isinstance(error, BadRequestError) and error.err_code not in (NO_PLACEMENT, NAME_IN_USE):
                    raise StreamRefused(f"JetStream refused the stream {name}: {error.description}") from error
                if time.monotonic() > deadline:
                    raise BufferUnavailable(f"JetStream at {','.join(self.buffer.servers)} has no leader "
                                            f"({type(error).__name__})") from error
                time.sleep(0.2)
            except APIError as error:
                raise StreamRefused(f"JetStream refused the stream {name}: {error.description}") from error

    def last_sequence(self, project: str, timeout_s: float = READ_TIMEOUT_S) -> int:
        """The sequence of the last request stored in the project's stream (a timeout past `timeout_s`)."""
        return self.stream_state(project, timeout_s).last_seq

    def stream_state(self, project: str, timeout_s: float = READ_TIMEOUT_S) -> StreamState:
        """The project's stream's first and last sequence and message count, asked within `timeout_s`."""
        info = self.call(self.js.stream_info(self.buffer.stream(project)), timeout_s)
        return info.state

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
        except (concurrent.futures.TimeoutError, nats.errors.Error, OSError):
            pass  # a connection that cannot close cleanly in time is dropped with its loop
        except Exception as error:
            # Flushing to a transport whose servers are all gone fails inside asyncio itself on
            # Python 3.12.1 (TypeError, AttributeError from a half-torn-down transport): the
            # connection is dropped with its loop all the same.
            log.warning("NATS: the connection did not close cleanly (%s); dropping it", type(error).__name__)
        finally:
            self._stop(max(0.0, deadline - time.monotonic()))

    def _stop(self, timeout: float) -> None:
        self._loop.call_soon_threadsafe(self._cancel_and_stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def _cancel_and_stop(self) -> None:
        """On the loop: cancel what the client left running (a connection that did not close
        cleanly leaves its readers), give them a step to finish, then stop."""
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.call_soon(self._loop.stop)

    def __enter__(self) -> NatsLink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
