"""`ledger serve`: the identity ledger behind an Amplitude- and Segment-compatible HTTP API.

This module wires the routes together and maps every error to its reply in one place:
refusals (`InvalidRequest`) get their own status and body, anything unexpected a bare
500 without a traceback, so bad input can never show the server's insides.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ledger.deleting import RUN_DUE_EVERY
from ledger.errors import BufferUnavailable, ConflictRetriesExhausted, InvalidRequest, LedgerFileReplaced, ReadAbandoned
from ledger.ledger import IdentityLedger
from ledger.server import access_log, lifecycle, openapi
from ledger.server.changes_api import changes_route
from ledger.server.corrections_api import correction_routes
from ledger.server.cors import UploadCors, checked_origins
from ledger.server.credentials import ServerConfigError
from ledger.server.cross_site import CrossSiteGuard, checked_trusted_origins
from ledger.server.deletions_api import deletion_routes
from ledger.server.explorer import explorer
from ledger.server.groups_api import group_routes
from ledger.server.http_input import BODY_TIMEOUT
from ledger.server.ingest_api import ingest_routes
from ledger.server.metrics import Metrics, Observed
from ledger.server.projects import ProjectConfig, one_project
from ledger.server.query_api import health_route, query_routes
from ledger.server.registry import Project, Projects, open_projects
from ledger.server.replies import HttpError, refusal, reply
from ledger.server.scheduler import deletion_schedule

__all__ = ["ServerConfigError", "create_app", "serve"]

log = logging.getLogger("ledger.server")


def create_app(ledger: IdentityLedger | Projects, api_keys: Iterable[str] = (), secret_key: str = "", *,
               cors_origins: list[str] | None = None, body_timeout: float = BODY_TIMEOUT,
               trusted_origins: list[str] | None = None) -> Starlette:
    """The ASGI app over open projects, or over one open ledger with its API keys and secret key;
    raises ServerConfigError without API keys or secret key.

    `cors_origins` are the web origins whose pages may upload (none: any origin); `trusted_origins`
    the other origins whose pages may change state (deletions, corrections: `cross_site`). The explorer
    (/ui) and /metrics describe one ledger, so they are served when the app holds one project.
    """
    projects = ledger if isinstance(ledger, Projects) else Projects.single(ledger, api_keys, secret_key)
    origins = checked_origins(cors_origins)
    trusted = checked_trusted_origins(trusted_origins)
    one_ledger: list[BaseRoute] = []
    middleware: list[Middleware] = []
    if len(projects.projects) == 1:
        only = projects.projects[0]
        metrics = Metrics(only.ledger)
        metered = metrics.metered(only.ledger)  # the explorer's ingest rate is fed through the same object
        projects = Projects([Project(only.name, only.credentials, metered)])
        one_ledger = [explorer(metered, only.credentials), metrics.route()]
        middleware.append(Middleware(Observed, metrics=metrics))
    uploads = ingest_routes(projects, body_timeout)
    middleware.append(Middleware(UploadCors, paths=[route.path for route in uploads], origins=origins))
    middleware.append(Middleware(CrossSiteGuard, open_paths=[route.path for route in uploads], trusted=trusted))
    return Starlette(
        routes=[*uploads, *group_routes(projects, body_timeout), *query_routes(projects), *deletion_routes(projects),
                *correction_routes(projects, body_timeout), changes_route(projects),
                health_route(projects), *one_ledger, openapi.route()],
        middleware=middleware,
        exception_handlers={
            InvalidRequest: _refused,
            HTTPException: _no_route,
            RecursionError: _too_deep,
            ConflictRetriesExhausted: _busy,
            BufferUnavailable: _busy,
            LedgerFileReplaced: _replaced,
            ReadAbandoned: _abandoned,
            Exception: _failed,
        },
    )


def serve(db_url: str, host: str, port: int, api_keys: list[str], secret_key: str,
          cors_origins: list[str] | None = None, *, projects: list[ProjectConfig] | None = None,
          buffer: str | None = None, deletions_every: float = RUN_DUE_EVERY,
          trusted_origins: list[str] | None = None) -> None:
    """Run the server until SIGTERM or SIGINT, then drain requests and close every ledger.

    Every `deletions_every` seconds (0: never) it runs each project's due deletion jobs.

    `projects` (from `--projects FILE`) replaces the one-project shorthand; with `buffer`
    (a NATS URL) uploads are published to JetStream for `ledger apply` instead of stored here.
    Raises ServerConfigError, or CannotListen for an address in use, before opening anything.
    """
    configs = projects or one_project(api_keys, secret_key, db_url)
    checked_origins(cors_origins)
    checked_trusted_origins(trusted_origins)
    with (lifecycle.stop_signals() as stopping, lifecycle.listen(host, port) as sock,
          open_projects(configs, buffer) as registry, access_log.to_stderr(),
          deletion_schedule(registry, deletions_every)):
        app = create_app(registry, cors_origins=cors_origins, trusted_origins=trusted_origins)
        lifecycle.run(app, sock, stopping)


async def _refused(_: Request, error: Exception) -> Response:
    assert isinstance(error, InvalidRequest)
    return refusal(error)


async def _no_route(request: Request, error: Exception) -> Response:
    """Starlette's routing errors (unknown path, wrong method) in the server's JSON shape."""
    assert isinstance(error, HTTPException)
    refused = HttpError.method_not_allowed() if error.status_code == 405 else HttpError.not_found(request.url.path)
    return reply(refused.body, refused.status, error.headers)


async def _too_deep(_: Request, __: Exception) -> Response:
    """JSON nested deeper than the decoder's stack: malformed input, refused before anything was stored."""
    return refusal(InvalidRequest.bad_body())


async def _busy(_: Request, error: Exception) -> Response:
    """Nothing was stored (other writers kept winning, or the log did not take it): SDKs retry a 503."""
    return reply({"code": 503, "error": str(error)}, 503, {"Retry-After": "1"})


async def _replaced(_: Request, error: Exception) -> Response:
    """The database file was deleted or replaced under the server: permanent until an operator acts."""
    log.error("%s", error)
    return reply({"code": 500, "error": str(error)}, 500)


async def _abandoned(_: Request, __: Exception) -> Response:
    """The client hung up and its read was stopped: nobody reads this (499, as nginx logs it)."""
    return reply({"code": 499, "error": "Client closed the request"}, 499)


async def _failed(_: Request, __: Exception) -> Response:
    """A bug, not bad input: the client gets no details; Starlette re-raises so the server logs it."""
    return reply({"code": 500, "error": "Internal server error"}, 500)
