"""Connections that must not be held open by a client that never finishes its request headers.

uvicorn times out idle keep-alive connections but puts no deadline on request headers that
trickle in a byte at a time, so enough such clients would hold every connection the server
allows. This is uvicorn's own HTTP/1.1 protocol (on httptools, the C parser: measured on 10-event
uploads from 16 clients, 243 µs of server CPU per request against h11's 353) with one addition: a connection whose next
request's headers are not complete within `header_timeout` seconds is closed. (Slow bodies
are answered 408 by the endpoints themselves: `ledger.server.http_input.read_body`.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Seconds a client gets to send a request's headers.
HEADER_TIMEOUT = 10.0


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request headers take too long."""

    header_timeout = HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()  # a request's headers are in
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._arm_header_deadline()  # for the next request on a kept-alive connection
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self, *_: Any) -> None:
        self._header_deadline = None
        waiting_for_headers = self.cycle is None or self.cycle.response_complete
        if waiting_for_headers and not self.transport.is_closing():
            self.transport.close()
