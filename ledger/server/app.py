"""`ledger serve`: the identity ledger behind an Amplitude- and Segment-compatible HTTP API.

This module wires the routes together and maps every error to its reply in one place:
refusals (`InvalidRequest`) get their own status and body, anything unexpected a bare
500 without a traceback, so bad input can never show the server's insides.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from ledger.server.cors import UploadCors, checked_origins
from ledger.server.credentials import Credentials, ServerConfigError
from ledger.errors import ConflictRetriesExhausted, InvalidRequest, LedgerFileReplaced
from ledger.server.explorer import explorer
from ledger.server.http_input import BODY_TIMEOUT
from ledger.server.ingest_api import ingest_routes
from ledger.ledger import IdentityLedger
from ledger.server import access_log, lifecycle, openapi
from ledger.server.metrics import Metrics, Observed
from ledger.server.query_api import health_route, query_routes
from ledger.server.replies import HttpError, refusal, reply

__all__ = ["ServerConfigError", "create_app", "serve"]

log = logging.getLogger("ledger.server")


def create_app(ledger: IdentityLedger, api_keys: list[str], secret_key: str, *,
               cors_origins: list[str] | None = None, body_timeout: float = BODY_TIMEOUT) -> Starlette:
    """The ASGI app over an open ledger; raises ServerConfigError without API keys or secret key.

    `cors_origins` are the web origins whose pages may upload (none: any origin).
    """
    credentials = Credentials.configured(api_keys, secret_key)
    metrics = Metrics(ledger)
    metered = metrics.metered(ledger)  # the explorer's ingest rate is fed through the same object
    uploads = ingest_routes(metered, credentials, body_timeout)
    cors = Middleware(UploadCors, paths=[route.path for route in uploads], origins=checked_origins(cors_origins))
    return Starlette(
        routes=[*uploads, *query_routes(ledger, credentials), health_route(ledger), explorer(metered, credentials),
                metrics.route(), openapi.route()],
        middleware=[Middleware(Observed, metrics=metrics), cors],
        exception_handlers={
            InvalidRequest: _refused,
            HTTPException: _no_route,
            RecursionError: _too_deep,
            ConflictRetriesExhausted: _busy,
            LedgerFileReplaced: _replaced,
            Exception: _failed,
        },
    )


def serve(db_url: str, host: str, port: int, api_keys: list[str], secret_key: str,
          cors_origins: list[str] | None = None) -> None:
    """Run the server until SIGTERM or SIGINT, then drain requests and close the ledger.

    Raises ServerConfigError, or CannotListen for an address in use, before opening anything.
    """
    Credentials.configured(api_keys, secret_key)
    checked_origins(cors_origins)
    with lifecycle.listen(host, port) as sock, IdentityLedger(db_url) as ledger:
        access_log.to_stderr()
        lifecycle.run(create_app(ledger, api_keys, secret_key, cors_origins=cors_origins), sock)


async def _refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidRequest)
    return refusal(error)


async def _no_route(request: Request, error: Exception) -> Response:
    """Starlette's routing errors (unknown path, wrong method) in the server's JSON shape."""
    assert isinstance(error, HTTPException)
    if error.status_code == 405:
        refused = HttpError.method_not_allowed()
    else:
        refused = HttpError.not_found(request.url.path)
    return reply(refused.body, refused.status, error.headers)


async def _too_deep(_: Request, __: Exception) -> Response:
    """JSON nested deeper than the decoder's stack: malformed input, refused before anything was stored."""
    return refusal(InvalidRequest.bad_body())


async def _busy(_: Request, error: Exception) -> Response:
    """Other writers kept winning: nothing was stored, and SDKs retry a 503."""
    return reply({"code": 503, "error": str(error)}, 503, {"Retry-After": "1"})


async def _replaced(_: Request, error: Exception) -> Response:
    """The database file was deleted or replaced under the server: permanent until an operator acts."""
    log.error("%s", error)
    return reply({"code": 500, "error": str(error)}, 500)


async def _failed(_: Request, __: Exception) -> Response:
    """A bug, not bad input: the client gets no details; Starlette re-raises so the server logs it."""
    return reply({"code": 500, "error": "Internal server error"}, 500)
