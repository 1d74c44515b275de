"""`ledger serve`: the identity ledger behind an Amplitude- and Segment-compatible HTTP API.

This module wires the routes together and maps every error to its reply in one place:
refusals (`InvalidRequest`) get their own status and body, anything unexpected a bare
500 without a traceback, so bad input can never show the server's insides.
"""

from __future__ import annotations

from typing import Iterable

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ledger.server.credentials import ServerConfigError
from ledger.errors import BufferUnavailable, ConflictRetriesExhausted, InvalidRequest
from ledger.server.ingest_api import ingest_routes
from ledger.ledger import IdentityLedger
from ledger.server.projects import ProjectConfig, one_project
from ledger.server.query_api import health_route, query_routes
from ledger.server.registry import Projects, open_projects
from ledger.server.replies import HttpError, refusal, reply

__all__ = ["ServerConfigError", "create_app", "serve"]


def create_app(ledger: IdentityLedger | Projects, api_keys: Iterable[str] = (), secret_key: str = "") -> Starlette:
    """The ASGI app over open projects, or over one open ledger with its API keys and secret key;
    raises ServerConfigError without API keys or secret key."""
    projects = ledger if isinstance(ledger, Projects) else Projects.single(ledger, api_keys, secret_key)
    return Starlette(
        routes=[*ingest_routes(projects), *query_routes(projects), health_route(projects)],
        exception_handlers={
            InvalidRequest: _refused,
            HTTPException: _no_route,
            RecursionError: _too_deep,
            ConflictRetriesExhausted: _busy,
            BufferUnavailable: _busy,
            Exception: _failed,
        },
    )


def serve(db_url: str, host: str, port: int, api_keys: list[str], secret_key: str, *,
          projects: list[ProjectConfig] | None = None, buffer: str | None = None) -> None:
    """Run the server until interrupted; raises ServerConfigError before opening anything if misconfigured.

    `projects` (from `--projects FILE`) replaces the one-project shorthand; with `buffer`
    (a NATS URL) uploads are published to JetStream for `ledger apply` instead of stored here.
    """
    configs = projects or one_project(api_keys, secret_key, db_url)
    with open_projects(configs, buffer) as registry:
        uvicorn.run(create_app(registry), host=host, port=port, log_level="info")


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


async def _failed(_: Request, __: Exception) -> Response:
    """A bug, not bad input: the client gets no details; Starlette re-raises so the server logs it."""
    return reply({"code": 500, "error": "Internal server error"}, 500)
