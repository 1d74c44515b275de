"""Amplitude's User Privacy API (v1): ask for people to be forgotten, list the jobs, withdraw one.

`POST /api/2/deletions/users` (JSON, or form-encoded with repeated fields), `GET
/api/2/deletions/users?start_day=&end_day=` and `DELETE /api/2/deletions/users/{amplitude_id}/{day}`,
each with HTTP Basic `api_key:secret_key` like the query API. Replies are Amplitude's shapes:
the job `{"day", "status", "amplitude_ids": [...]}`, and a JSON array of jobs for the listing.
The rules (at most 100 IDs, unknown IDs, schedules) are the ledger's (`ledger.deleting`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qs

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger.deleting import MAX_IDS
from ledger.errors import DeletionRefused, InvalidRequest
from ledger.server.http_input import FORM, JSON, basic_credentials, decode_json, read_body, to_int
from ledger.server.registry import Projects
from ledger.server.replies import HttpError

PATH = "/api/2/deletions/users"
BODY_LIMIT = 256 * 1024
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_encode = msgspec.json.Encoder().encode


class DeletionBody(msgspec.Struct):
    """A deletion request as JSON; Amplitude's docs spell the flag both ways."""

    amplitude_ids: list[Any] | None = None
    user_ids: list[Any] | None = None
    requester: Any = None
    ignore_invalid_id: bool | None = None
    ignore_invalid_ids: bool | None = None


def deletion_routes(projects: Projects) -> list[Route]:
    """The three routes, each answering for the project of the caller's API key and secret key."""

    def ledger_of(request: Request) -> Any:
        ledger = projects.reading(*(basic_credentials(request) or ("", "")))
        if ledger is None:
            raise HttpError.unauthorized()
        return ledger

    async def request_deletion(request: Request) -> Response:
        ledger = ledger_of(request)
        body = await read_body(request, (JSON, FORM), BODY_LIMIT)
        asked = _form(body) if _is_form(request) else decode_json(body, DeletionBody)
        job = await run_in_threadpool(
            ledger.forget, amplitude_ids=asked.amplitude_ids or [], user_ids=asked.user_ids or [],
            requester=asked.requester, ignore_invalid_id=bool(asked.ignore_invalid_id or asked.ignore_invalid_ids))
        return _json(job)

    async def list_jobs(request: Request) -> Response:
        ledger = ledger_of(request)
        start, end = (_day(request.query_params.get(name), name) for name in ("start_day", "end_day"))
        return _json(await run_in_threadpool(ledger.deletions, start, end))

    async def withdraw(request: Request) -> Response:
        ledger = ledger_of(request)
        amplitude_id = to_int(request.path_params["amplitude_id"], "amplitude_id", low=1)
        day = _day(request.path_params["day"], "day")
        return _json(await run_in_threadpool(ledger.withdraw_deletion, amplitude_id, day))

    return [
        Route(PATH, request_deletion, methods=["POST"]),
        Route(PATH, list_jobs, methods=["GET"]),
        Route(PATH + "/{amplitude_id}/{day}", withdraw, methods=["DELETE"]),
    ]


def _json(answer: Any) -> Response:
    return Response(_encode(answer), 200, media_type=JSON)


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower() == FORM


def _form(body: bytes) -> DeletionBody:
    """The form-encoded variant: `amplitude_ids` and `user_ids` repeated, one ID each."""
    try:
        form = parse_qs(body.decode(), keep_blank_values=True, errors="strict", max_num_fields=MAX_IDS + 8)
    except ValueError:
        raise InvalidRequest.bad_body("Invalid form body (at most 100 IDs)") from None
    texts = form.get("amplitude_ids", [])
    bad = [index for index, text in enumerate(texts) if not (text.isascii() and text.isdigit() and len(text) <= 19)]
    if bad:
        raise DeletionRefused.because("amplitude_ids must be whole numbers from 1 to 2^63-1", invalid_indices=bad)
    flag = (form.get("ignore_invalid_id") or form.get("ignore_invalid_ids") or ["false"])[-1].lower()
    return DeletionBody(amplitude_ids=[int(text) for text in texts], user_ids=form.get("user_ids", []),
                        requester=form["requester"][-1] if form.get("requester") else None,
                        ignore_invalid_id=flag in ("true", "1"))


def _day(text: str | None, name: str) -> dt.date:
    """A YYYY-MM-DD day, or a 400 naming the parameter."""
    if text is None or not _DAY.match(text):
        raise HttpError.bad_parameter(f"{name} must be a day, YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise HttpError.bad_parameter(f"{name} must be a day, YYYY-MM-DD") from None
