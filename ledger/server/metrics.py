"""What the server tells its operators: Prometheus metrics and one JSON access-log line per request.

Everything is observed from outside the routes (an ASGI middleware around the app, and a thin
wrapper around the ledger the ingest routes call), so no endpoint carries measuring code. Each
app has its own registry: two apps in one process (tests, embedding) never share counters.
"""

from __future__ import annotations

import time
from typing import Any, cast

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import BAD_EVENT_KEYS, LedgerError
from ledger.ledger import IdentityLedger
from ledger.server import access_log

#: Commit latencies span a cached single call (sub-millisecond) to a contended PostgreSQL batch.
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: A refusal's body is read for its reason; only the first bytes are kept (bodies are small).
_KEPT_BODY = 4096
_STATUS_REASONS = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
                   415: "unsupported_media_type", 500: "internal_error", 503: "busy"}


class Metrics:
    """The server's counters, one registry per app."""

    def __init__(self, ledger: IdentityLedger) -> None:
        self.registry = CollectorRegistry()
        self.in_flight = Gauge("ledger_http_requests_in_flight", "HTTP requests being answered now",
                               registry=self.registry)
        self.replies = Counter("ledger_http_replies", "HTTP replies sent, by endpoint and status code",
                               ["endpoint", "code"], registry=self.registry)
        self.refusals = Counter("ledger_refusals", "Requests refused (nothing stored), by reason",
                                ["reason"], registry=self.registry)
        self.ingested = Counter("ledger_events_ingested", "Calls stored (tracked events and identify calls)",
                                registry=self.registry)
        self.duplicates = Counter("ledger_duplicates", "Calls dropped as retries of stored ones",
                                  registry=self.registry)
        self.commit_seconds = Histogram(
            "ledger_commit_seconds",
            "Time for the ledger to validate, resolve and durably store one request (group commit included)",
            buckets=COMMIT_BUCKETS, registry=self.registry)
        lag = Gauge("ledger_projection_lag_events",
                    "Log events the read side has not applied yet (written by other processes)",
                    registry=self.registry)
        lag.set_function(lambda: _projection_lag(ledger))

    def metered(self, ledger: IdentityLedger) -> IdentityLedger:
        """The ledger as the ingest routes should call it: each write timed and counted."""
        return cast(IdentityLedger, _MeteredLedger(ledger, self))

    def route(self) -> Route:
        """`GET /metrics` in Prometheus' text format, unauthenticated like `/healthz`."""

        async def metrics(_: Request) -> Response:
            text = await run_in_threadpool(generate_latest, self.registry)
            return Response(text, headers={"Content-Type": CONTENT_TYPE_LATEST})

        return Route("/metrics", metrics, methods=["GET"])

    def replied(self, endpoint: str, status: int, body: bytes) -> None:
        self.replies.labels(endpoint, str(status)).inc()
        if status >= 400:
            self.refusals.labels(refusal_reason(status, body)).inc()


def refusal_reason(status: int, body: bytes) -> str:
    """A short, bounded label for why a request was refused (never the offending value itself)."""
    if status != 400:
        return _STATUS_REASONS.get(status, str(status))
    try:
        reply = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "bad_request"
    if not isinstance(reply, dict):
        return "bad_request"
    error = str(reply.get("error", ""))
    if any(key in reply for key in BAD_EVENT_KEYS):
        return "invalid_events"
    if "missing_field" in reply:
        return "missing_field"
    for prefix, reason in (("Invalid API key", "invalid_api_key"), ("Invalid query parameters", "bad_parameter"),
                           ("Invalid options", "bad_options")):
        if error.startswith(prefix):
            return reason
    return "bad_body"


class _MeteredLedger:
    """Delegates everything to the ledger; `ingest` and `identify` are timed and counted."""

    def __init__(self, ledger: IdentityLedger, metrics: Metrics) -> None:
        self._ledger = ledger
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def ingest(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._ledger.ingest, args, kwargs)

    def identify(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._ledger.identify, args, kwargs)

    def _timed(self, write: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            report = write(*args, **kwargs)
        except LedgerError:
            raise  # refused or busy: counted by its reply, not as a commit
        self._metrics.commit_seconds.observe(time.perf_counter() - started)
        self._metrics.ingested.inc(report.ingested)
        self._metrics.duplicates.inc(report.duplicates)
        return report


def _projection_lag(ledger: IdentityLedger) -> float:
    """Stored log events minus those the projections applied (`IdentityLedger.lag`)."""
    return float(ledger.lag())


class Observed:
    """ASGI middleware: counts every request and reply by endpoint and writes its access-log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before replying
        sent = 0
        kept = bytearray()
        self.metrics.in_flight.inc()

        async def watch(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                sent += len(chunk)
                if status >= 400 and len(kept) < _KEPT_BODY:
                    kept.extend(chunk[: _KEPT_BODY - len(kept)])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            self.metrics.in_flight.dec()
            self.metrics.replied(endpoint, status, bytes(kept))
            access_log.write(scope, endpoint, status, sent, time.perf_counter() - started)
