"""Work for a request stops when its client goes: a long read no one waits for must not keep running.

`while_connected` runs a read in a worker thread and watches the connection meanwhile; once
the client has hung up it sets the work's `cancelled` event, which the work checks where it can
stop (a past view checks it before it opens: `IdentityLedger.as_of` raises `ReadAbandoned`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

#: Seconds between two looks at the connection: how long abandoned work may run on before it is told.
POLL_EVERY = 0.25

T = TypeVar("T")


async def while_connected(request: Request, work: Callable[[threading.Event], T]) -> T:
    """`work(cancelled)` in a worker thread; `cancelled` is set as soon as the client disconnects.

    For requests whose body is read (or that have none): the watch consumes what the client sends.
    """
    cancelled = threading.Event()

    async def watch() -> None:
        while not await request.is_disconnected():
            await anyio.sleep(POLL_EVERY)
        cancelled.set()

    done: list[T] = []
    failed: list[Exception] = []
    async with anyio.create_task_group() as watching:
        watching.start_soon(watch)
        try:
            done.append(await run_in_threadpool(work, cancelled))
        except Exception as error:
            failed.append(error)
        watching.cancel_scope.cancel()
    if failed:
        raise failed[0]
    return done[0]
