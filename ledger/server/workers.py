"""`ledger serve --workers N`: several processes serving one ledger from one listening socket.

One Python process is capped at one core by the GIL; workers use more. The parent binds the address
(a port in use is still `CannotListen` before anything is opened) and opens every project itself, so
a bad database or project file fails once, before any worker starts, and an old read side is upgraded
before anyone else holds the ledger. The parent serves no request: it runs the deletion-job schedule
(once, not once per worker) and watches the workers. Each worker is a fresh interpreter (the spawn
start method: no database connection or thread is carried across a fork) that opens its own ledgers,
with its own cache, and serves the same app on the inherited socket; the ledger's writers already
take turns and retry conflicts across processes.

SIGTERM or SIGINT to the parent is passed on as SIGTERM: every worker drains its in-flight requests and
closes its ledgers, then the parent closes its own and returns. A worker that ends on its own stops the
server: the others are drained, and the parent raises `WorkerEnded` (exit code 2) naming it, so the
process supervisor (systemd, the container runtime) restarts the whole server rather than it running
on with fewer workers and nobody noticing. A worker that exits 0 was stopped by a signal (a terminal's
Ctrl-C reaches every process of the group): the server stops cleanly too. A parent killed outright
(SIGKILL) leaves no worker serving: each watches its parent and then stops itself the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from typing import Any

from starlette.types import Lifespan

from ledger.deleting import RUN_DUE_EVERY
from ledger.errors import LedgerError
from ledger.server import access_log, lifecycle
from ledger.server.app import create_app
from ledger.server.cors import checked_origins
from ledger.server.cross_site import checked_trusted_origins
from ledger.server.projects import ProjectConfig, one_project
from ledger.server.registry import open_projects
from ledger.server.scheduler import deletion_schedule

log = logging.getLogger("ledger.server")

#: Connections the kernel queues while every worker is busy (uvicorn's default backlog).
BACKLOG = 2048
#: Seconds between the parent's checks for a stop signal, and between SIGTERMs to a worker not yet stopped.
CHECK_EVERY = 0.2
RESEND_STOP_EVERY = 1.0
#: A worker's exit code when it cannot open its ledgers (the CLI's "database error").
WORKER_FAILED = 2

_spawn = multiprocessing.get_context("spawn")


class WorkerEnded(LedgerError):
    """A worker process ended while the server was not stopping; the server stopped rather than run short."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to open its own ledgers and serve the same app (pickled to the new process)."""

    configs: list[ProjectConfig]
    buffer: str | None
    cors_origins: list[str] | None
    trusted_origins: list[str] | None


def serve(db_url: str, host: str, port: int, api_keys: list[str], secret_key: str,
          cors_origins: list[str] | None = None, *, workers: int, projects: list[ProjectConfig] | None = None,
          buffer: str | None = None, deletions_every: float = RUN_DUE_EVERY,
          trusted_origins: list[str] | None = None) -> None:
    """`ledger.server.app.serve` with `workers` processes answering requests; returns after SIGTERM or SIGINT
    once every worker has drained and stopped. Raises what `app.serve` raises, and `WorkerEnded`."""
    configs = projects or one_project(api_keys, secret_key, db_url)
    checked_origins(cors_origins)
    checked_trusted_origins(trusted_origins)
    spec = WorkerSpec(configs, buffer, cors_origins, trusted_origins)
    with (lifecycle.stop_signals() as stopping, lifecycle.listen(host, port) as sock,
          open_projects(configs, buffer) as registry, access_log.to_stderr(),
          deletion_schedule(registry, deletions_every)):
        sock.listen(BACKLOG)  # connections queue from now on, while the workers start
        _supervise(spec, sock, workers, stopping)


def _supervise(spec: WorkerSpec, sock: socket.socket, count: int, stopping: threading.Event) -> None:
    """Start `count` workers on `sock`, wait for a stop signal or a worker's end, then stop them all."""
    workers: list[BaseProcess] = []
    started = [_spawn.Event() for _ in range(count)]
    ended: BaseProcess | None = None
    try:
        for ready in started:
            if stopping.is_set():
                break
            worker = _spawn.Process(target=_work, args=(spec, sock, ready), name="ledger-serve-worker")
            worker.start()
            workers.append(worker)
        ended = _watch(workers, started, stopping)
    finally:
        _stop(workers)
    if ended is not None and ended.exitcode != 0:
        raise WorkerEnded(f"worker process {ended.pid} {_how(ended.exitcode)}; the server stopped "
                          "(its other workers drained their requests)")


def _watch(workers: list[BaseProcess], started: list[Event], stopping: threading.Event) -> BaseProcess | None:
    """Say when every worker serves; return the first worker to end before a stop signal, or None
    once the parent is told to stop."""
    sentinels = {worker.sentinel: worker for worker in workers}
    announced = False
    while not stopping.is_set():
        if not announced and all(ready.is_set() for ready in started):
            log.info("%d workers serving: processes %s", len(workers), ", ".join(str(w.pid) for w in workers))
            announced = True
        for ready in multiprocessing.connection.wait(list(sentinels), timeout=CHECK_EVERY):
            worker = sentinels[ready]  # type: ignore[index]
            worker.join()
            if worker.exitcode == 0:
                log.info("worker process %d stopped (a signal reached it): stopping the server", worker.pid)
            else:
                log.error("worker process %d %s: stopping the server", worker.pid, _how(worker.exitcode))
            return worker
    return None


def _stop(workers: list[BaseProcess]) -> None:
    """SIGTERM each running worker until it has drained and exited (again, for one still starting up)."""
    while running := [worker for worker in workers if worker.is_alive()]:
        for worker in running:
            worker.terminate()
        multiprocessing.connection.wait([worker.sentinel for worker in running], timeout=RESEND_STOP_EVERY)
    for worker in workers:
        worker.join()


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


def _work(spec: WorkerSpec, sock: socket.socket, started: Event) -> None:
    """One worker: its own ledgers, the same app, the shared socket; stops on SIGTERM like a lone server,
    and sets `started` when its app has started (it accepts connections right after).

    Stop signals are ignored while it opens and closes its ledgers: the parent repeats SIGTERM until the
    worker is serving (and can drain), and a late one cannot cut a ledger's close short."""
    for sig in lifecycle.STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    threading.Thread(target=_stop_when_orphaned, name="parent-watch", daemon=True).start()
    try:
        with access_log.to_stderr(), open_projects(spec.configs, spec.buffer) as registry:
            app = create_app(registry, cors_origins=spec.cors_origins, trusted_origins=spec.trusted_origins)
            app.router.lifespan_context = _telling(app.router.lifespan_context, started)
            lifecycle.run(app, sock)
    except Exception as error:  # the parent reports the exit code; this line says why
        print(f"ledger: error: worker process {os.getpid()}: {error}", file=sys.stderr)
        sys.exit(WORKER_FAILED)


def _stop_when_orphaned() -> None:
    """A parent killed outright (SIGKILL) cannot stop its workers: each stops itself, draining its requests,
    rather than serve on with nobody watching it (SIGTERM repeated, as the parent would)."""
    parent = multiprocessing.parent_process()
    assert parent is not None
    multiprocessing.connection.wait([parent.sentinel])
    while True:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(RESEND_STOP_EVERY)


def _telling(lifespan: Lifespan[Any], started: Event) -> Lifespan[Any]:
    """`lifespan`, setting `started` once the app has started."""

    @asynccontextmanager
    async def telling(app: Any) -> AsyncIterator[Any]:
        async with lifespan(app) as state:
            started.set()
            yield state

    return telling
