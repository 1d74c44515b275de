"""The access log: one JSON object per request on the `ledger.access` logger.

One line per request, machine-readable, with no request body and no credentials: the path
is logged without its query string, because query parameters carry user and device IDs.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from starlette.types import Scope

log = logging.getLogger("ledger.access")
_encoder = msgspec.json.Encoder()


def write(scope: Scope, endpoint: str, status: int, sent: int, seconds: float) -> None:
    """Log one answered request."""
    if not log.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "method": scope.get("method"),
        "path": scope.get("path"),
        "endpoint": endpoint,
        "status": status,
        "bytes": sent,
        "ms": round(seconds * 1000, 3),
        "client": client[0] if client else None,
    }
    log.info(_encoder.encode(line).decode())


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each line to the `sys.stderr` of the moment (it may be replaced after start-up)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


@contextmanager
def to_stderr() -> Iterator[None]:
    """Send access-log lines, and the server's own INFO lines (deletion jobs run), to stderr while the
    server runs (embedders choose their own), then stop."""
    with _lines_to_stderr(log, "%(message)s"), \
            _lines_to_stderr(logging.getLogger("ledger.server"), "%(asctime)s %(levelname)s %(name)s: %(message)s"):
        yield


@contextmanager
def _lines_to_stderr(logger: logging.Logger, layout: str) -> Iterator[None]:
    """INFO and above of `logger` to stderr, unless the embedder already gave it a handler."""
    if logger.handlers:
        yield
        return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter(layout))
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
