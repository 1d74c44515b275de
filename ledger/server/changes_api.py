"""`GET /v1/changes`: the change feed (docs/export.md), a page of identity facts after a position.

`wait=SECONDS` long-polls: the request is answered as soon as a change arrives, when the time is up
(with no changes and the same `next`), or dropped when the client hangs up (`while_connected`).
"""

from __future__ import annotations

import threading
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger.ledger import IdentityLedger
from ledger.server.abandoned import while_connected
from ledger.server.http_input import basic_credentials, query_int
from ledger.server.registry import Projects
from ledger.server.replies import HttpError, ok

PAGE = 100
MAX_PAGE = 1000
MAX_WAIT = 60
#: Seconds between two looks at the ledger while a request waits for a change.
LOOK_EVERY = 0.1


def changes_route(projects: Projects) -> Route:
    async def endpoint(request: Request) -> Response:
        ledger = projects.reading(*(basic_credentials(request) or ("", "")))
        if ledger is None:
            raise HttpError.unauthorized()
        after = query_int(request, "after", default=0)
        limit = query_int(request, "limit", default=PAGE, low=1, high=MAX_PAGE)
        wait = query_int(request, "wait", default=0, high=MAX_WAIT)
        return await while_connected(request, lambda cancelled: _answer(ledger, after, limit, wait, cancelled))

    return Route("/v1/changes", endpoint, methods=["GET"])


def _answer(ledger: IdentityLedger, after: int, limit: int, wait: int, cancelled: threading.Event) -> Response:
    deadline = time.monotonic() + wait
    while True:
        page = ledger.changes(after, limit)
        if page.changes or time.monotonic() >= deadline or cancelled.wait(LOOK_EVERY):
            return ok(changes=page.changes, next=page.next)
