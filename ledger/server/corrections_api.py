"""`POST /v1/corrections`: retract a bad user ID as an audited correction (docs/corrections.md).

It rewrites who every affected user is, so it needs what reading needs: HTTP Basic
`api_key:secret_key`. The body is small JSON (`user_id`, `reason`, optional `requester`);
every refusal is the ledger's `CorrectionRefused` or the input layer's 400/413/415, never a 500.
The list of corrections is a query route (`GET /v1/corrections`, in `query_api`).
"""

from __future__ import annotations

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger.server.http_input import JSON, basic_credentials, decode_json, read_body
from ledger.server.registry import Projects
from ledger.server.replies import HttpError, ok

#: A correction's body: three short strings (the reason may be a paragraph).
MAX_BODY = 64 * 1024


class CorrectionIn(msgspec.Struct, forbid_unknown_fields=True):
    """What `POST /v1/corrections` reads."""

    user_id: str
    reason: str
    requester: str | None = None


def correction_routes(projects: Projects, body_timeout: float) -> list[Route]:
    async def retract(request: Request) -> Response:
        api_key, secret_key = basic_credentials(request) or ("", "")
        ledger = projects.reading(api_key, secret_key)
        if ledger is None:
            raise HttpError.unauthorized()
        wanted = decode_json(await read_body(request, JSON, MAX_BODY, body_timeout), CorrectionIn)
        requester = wanted.requester if wanted.requester is not None else f"api_key {api_key}"
        correction = await run_in_threadpool(
            lambda: ledger.retract_user_id(wanted.user_id, reason=wanted.reason, requester=requester))
        return ok(correction=correction)

    return [Route("/v1/corrections", retract, methods=["POST"])]
