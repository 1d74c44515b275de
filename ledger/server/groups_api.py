"""Amplitude's Group Identify API (`POST /groupidentify`) and User Mapping API (`/usermap`).

Both authenticate like Amplitude's: with the project's API key in the request (a query or form
field), not with the secret key. Their fields may come in the query string (Amplitude's own
examples) or a form body; a form field wins over the same query field. Each only translates the
request into `group_identify` / `map_users` on the key's ledger; the rules live in the ledger.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger.errors import InvalidRequest
from ledger.server.http_input import BODY_TIMEOUT, FORM, decode_json, read_body
from ledger.server.registry import Projects
from ledger.server.replies import ok

#: Amplitude's limit for both APIs, bytes.
LIMIT = 1024 * 1024


def _fields(query: str, body: bytes) -> dict[str, str]:
    """The query's and the form body's fields (the body's win); a malformed form is a 400."""
    fields: dict[str, str] = {}
    for text in (query, body.decode()):
        try:
            parsed = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=16)
        except ValueError:
            raise InvalidRequest.bad_body("Invalid form body") from None
        fields.update({name: values[-1] for name, values in parsed.items()})
    return fields


def _items(fields: dict[str, str], name: str) -> list[Any]:
    """A field holding one JSON object or a list of them, as a list; missing or empty is a 400."""
    text = fields.get(name, "")
    if not text:
        raise InvalidRequest.missing_field(name)
    found = decode_json(text.encode(), Any)
    items = found if isinstance(found, list) else [found]
    if not items:
        raise InvalidRequest.missing_field(name)
    return items


async def _read(request: Request, timeout: float) -> tuple[str, bytes]:
    """The query string and the form body (none for a GET, or a POST that sends none)."""
    query = request.url.query
    if len(query.encode()) > LIMIT:
        raise InvalidRequest.payload_too_large()
    sends_body = request.method == "POST" and (request.headers.get("content-type")
                                               or request.headers.get("content-length", "0") != "0")
    body = await read_body(request, FORM, LIMIT - len(query.encode()), timeout) if sends_body else b""
    return query, body


def group_routes(projects: Projects, body_timeout: float = BODY_TIMEOUT) -> list[Route]:
    """`POST /groupidentify` and `GET`/`POST /usermap`, for any configured API key."""

    def identify_groups(query: str, body: bytes) -> Response:
        fields = _fields(query, body)
        ledger = projects.for_upload(fields.get("api_key"))
        report = ledger.group_identify(_items(fields, "identification"))
        return ok(events_ingested=report.ingested, payload_size_bytes=len(query.encode()) + len(body),
                  server_upload_time=report.server_time)

    def map_users(query: str, body: bytes) -> Response:
        fields = _fields(query, body)
        ledger = projects.for_upload(fields.get("api_key"))
        report = ledger.map_users(_items(fields, "mapping"), requester=f"api_key:{fields['api_key']}")
        return ok(mapped=report.mapped, unmapped=report.unmapped, unchanged=report.unchanged)

    async def groupidentify(request: Request) -> Response:
        return await run_in_threadpool(identify_groups, *await _read(request, body_timeout))

    async def usermap(request: Request) -> Response:
        return await run_in_threadpool(map_users, *await _read(request, body_timeout))

    return [
        Route("/groupidentify", groupidentify, methods=["POST"]),
        Route("/usermap", usermap, methods=["GET", "POST"]),
    ]
