"""Starting and stopping `ledger serve` the way process supervisors expect.

- The address is bound before the ledger is opened, so a port in use is one clear error
  (`CannotListen`, exit code 3) and no database is touched.
- SIGTERM (systemd, container runtimes) and SIGINT (Ctrl-C) stop accepting connections,
  let every in-flight request finish, and return normally, so the caller closes the ledger
  (SQLite writes its WAL back and removes it) and the process exits 0. Uvicorn re-raises the
  signal after its graceful shutdown, which would kill the process before the ledger is
  closed; the handler installed here receives that re-raise instead.
- A stop signal that arrives while the ledgers open (`stop_signals`, caught from before they
  open) is kept: the server opens, serves nothing, closes and exits 0, rather than being
  killed half-started by the signal's default action.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from ledger.errors import CannotListen
from ledger.server.connections import HeaderDeadlineProtocol

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT from now on (the previous handlers come back on exit)."""
    stopping = threading.Event()

    def stop(_signal: int, _frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def listen(host: str, port: int) -> socket.socket:
    """A bound TCP socket for (host, port), or CannotListen with the reason."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise CannotListen(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        reason = (error.strerror or str(error)).lower()
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


#: Connections and requests served at once.
MAX_CONCURRENCY = 1000
#: Seconds an idle keep-alive connection is kept open.
KEEP_ALIVE_TIMEOUT = 5


def run(app: ASGIApp, sock: socket.socket, stopping: threading.Event | None = None) -> None:
    """Serve on `sock` until SIGTERM or SIGINT, then drain in-flight requests and return; at once if
    `stopping` (from `stop_signals`) is already set.

    Connections are bounded: at most `MAX_CONCURRENCY` at once (past it uvicorn answers 503
    at once rather than queueing), idle keep-alives close after `KEEP_ALIVE_TIMEOUT` s, and
    request headers must arrive within `HeaderDeadlineProtocol.header_timeout` s.
    """
    if stopping is not None and stopping.is_set():
        logging.getLogger("uvicorn.error").info("Stopped while starting (a signal reached it): not serving")
        return
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False, limit_concurrency=MAX_CONCURRENCY,
                                           timeout_keep_alive=KEEP_ALIVE_TIMEOUT, http=HeaderDeadlineProtocol))
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info("Listening on http://%s:%d (SIGTERM or CTRL+C stops)", shown, port)

    def stop(_signal: int, _frame: object) -> None:
        server.should_exit = True  # before uvicorn's own handler is in place, and for its re-raise after

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
