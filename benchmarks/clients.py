"""Concurrent clients sending requests to one ledger, as SDKs would: the timed loop, shared.

Standalone (no package imports), so `benchmarks/contender.py` can use it against any
checkout of the ledger as well as `benchmarks.ledger_runs` against this one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


def send_concurrently(send: Callable[[list[dict[str, Any]]], Any], requests: Iterable[list[dict[str, Any]]],
                      threads: int) -> float:
    """`threads` clients take the requests in order and `send` each; the wall-clock seconds it took.

    The requests are materialised first, so generating them is not timed. The first failure is raised.
    """
    waiting = iter(list(requests))
    taking = threading.Lock()
    failures: list[BaseException] = []

    def client() -> None:
        try:
            while True:
                with taking:
                    request = next(waiting, None)
                if request is None:
                    return
                send(request)
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    if failures:
        raise failures[0]
    return seconds
