"""The command line of the multi-project, buffered deployment.

`ledger apply` runs the identity writers, `ledger erase-buffer` erases what they applied from
the streams (after a deletion job); `ledger serve` and `ledger stats` take
`--projects FILE` (and `--buffer URL`) through the helpers here.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import nats.errors

from ledger.buffer.lock import LockWaitAbandoned, writer_lock
from ledger.buffer.publisher import applied_sequence
from ledger.buffer.retention import erase_applied
from ledger.buffer.stream import BufferConfig, NatsLink
from ledger.buffer.writer import Writer
from ledger.errors import LedgerError
from ledger.ledger import IdentityLedger
from ledger.server.projects import ProjectConfig, load_projects

log = logging.getLogger("ledger.apply")
#: How long `ledger apply` may take to stop, in all, once told to (SIGTERM, SIGINT or a failure).
SHUTDOWN_S = 15.0


def add_project_options(sub: argparse.ArgumentParser, *, several: bool = False) -> None:
    sub.add_argument("--projects", metavar="FILE", help="the projects, as TOML ([projects.NAME] api_keys, "
                     "secret_key, db); replaces --api-key/--secret-key/--db")
    sub.add_argument("--buffer", metavar="URL", help="NATS JetStream URL, e.g. nats://127.0.0.1:4222 "
                     "(several comma-separated; ?prefix=P&replicas=N)")
    if several:
        sub.add_argument("--project", action="append", metavar="NAME",
                         help="only this project of --projects (repeatable; default: every one)")
    else:
        sub.add_argument("--project", metavar="NAME", help="the project of --projects to read, and its stream")


def selected_projects(args: argparse.Namespace) -> list[ProjectConfig]:
    """The projects of --projects, narrowed to the --project names given."""
    if not args.projects:
        raise LedgerError("pass --projects FILE")
    configs = load_projects(args.projects)
    wanted = args.project if isinstance(args.project, list) else [args.project] if args.project else []
    unknown = set(wanted) - {config.name for config in configs}
    if unknown:
        raise LedgerError(f"no project {sorted(unknown)[0]!r} in {args.projects}")
    return [config for config in configs if not wanted or config.name in wanted]


def project_db(args: argparse.Namespace) -> str | None:
    """With --projects and --project, that project's database URL."""
    if getattr(args, "projects", None) and getattr(args, "project", None):
        return selected_projects(args)[0].db
    return None


def lag(args: argparse.Namespace, ledger: Any) -> dict[str, int | None]:
    """With --buffer and --project: the writer's applied sequence, the stream's last, and the lag
    (None, as in `/v1/stats`, when the broker does not answer in time)."""
    if not getattr(args, "buffer", None) or not getattr(args, "project", None):
        return {}
    buffer = BufferConfig.from_url(args.buffer)
    with NatsLink(buffer) as link:
        try:
            last: int | None = link.last_sequence(args.project)
        except (nats.errors.Error, TimeoutError):
            last = None
    applied = applied_sequence(ledger, buffer.stream(args.project))
    lagging = None if last is None else max(last - applied, 0)
    return {"applied_sequence": applied, "stream_sequence": last, "lag": lagging}


def erase_buffer(args: argparse.Namespace) -> int:
    """Erase what each selected project's writer has applied from its stream, and say so per project."""
    configs = selected_projects(args)
    if not args.buffer:
        raise LedgerError("pass --buffer nats://HOST:PORT")
    buffer = BufferConfig.from_url(args.buffer)
    with NatsLink(buffer) as link:
        for config in configs:
            with IdentityLedger(config.db) as ledger:
                through = applied_sequence(ledger, buffer.stream(config.name))
            print(erase_applied(link, config.name, through).describe())
    return 0


def apply(args: argparse.Namespace) -> int:
    """Run one writer per selected project until SIGINT or SIGTERM."""
    configs = selected_projects(args)
    if not args.buffer:
        raise LedgerError("pass --buffer nats://HOST:PORT")
    buffer = BufferConfig.from_url(args.buffer)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    failures: list[BaseException] = []
    received: list[int] = []

    def on_signal(number: int, _: Any) -> None:
        received.append(number)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    with NatsLink(buffer) as link:
        threads = [threading.Thread(target=_guard(_apply_project, stop, failures), args=(config, link, stop, args.wait),
                                    name=f"apply-{config.name}", daemon=True) for config in configs]
        for thread in threads:
            thread.start()
        while not stop.wait(0.5) and any(thread.is_alive() for thread in threads):
            pass
        if received:  # said here, not in the handler: logging is not safe inside a signal handler
            log.info("%s received: stopping; each writer finishes the batch in hand (at most %.0f s)",
                     signal.Signals(received[0]).name, SHUTDOWN_S)
        stop.set()
        _wind_down(threads, link, SHUTDOWN_S)
    if failures:
        raise failures[0]
    return 0


def _wind_down(threads: list[threading.Thread], link: NatsLink, budget_s: float) -> None:
    """Let the writers finish their batch in half the budget, then close NATS under any still waiting on it.

    One budget in all, not one per writer, so a supervisor's grace period can be set once.
    Nothing is lost by stopping a writer mid-batch: what it did not commit is unacknowledged
    and delivered again, and what it committed but did not acknowledge is recognised by its
    stored stream sequence.
    """
    deadline = time.monotonic() + budget_s
    for thread in threads:
        thread.join(max(0.0, deadline - budget_s / 2 - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        link.close(max(0.0, deadline - time.monotonic()) / 2)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("%s did not stop within %.0f s; its unacknowledged requests will be applied on restart",
                        thread.name, budget_s)


def _guard(work: Callable[..., None], stop: threading.Event, failures: list[BaseException]) -> Callable[..., None]:
    """Run `work`; a failure stops every writer of the process (a supervisor restarts it)."""

    def guarded(*arguments: Any) -> None:
        try:
            work(*arguments)
        except BaseException as error:
            log.error("%s", error)
            failures.append(error)
            stop.set()

    return guarded


def _apply_project(config: ProjectConfig, link: NatsLink, stop: threading.Event, wait: bool) -> None:
    log.info("project %s: waiting for its writer lock", config.name)
    try:
        with writer_lock(config.name, config.db, wait=wait, until=stop), IdentityLedger(config.db) as ledger:
            log.info("project %s: writer lock held", config.name)
            writer = Writer(ledger, link, config.name)
            started_at = writer.applied
            writer.run(stop)
            log.info("project %s: stopped; applied %d requests in this run, up to stream sequence %d",
                     config.name, writer.applied - started_at, writer.applied)
    except LockWaitAbandoned:
        log.info("project %s: stopped while waiting for its writer lock", config.name)
