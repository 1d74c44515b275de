"""The ingest endpoints: Amplitude's HTTP V2, Batch and Identify APIs, and Segment's batch API.

Each one only translates a request into `ingest` / `identify` on the ledger of the project
its API key selects; the identity rules and the event contract live in the ledger. The
ledger is called in an ingest thread (`offload`) so one slow save never stalls the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger.domain.calls import check_min_id_length
from ledger.errors import InvalidRequest
from ledger.ledger import IdentityLedger, IngestReport
from ledger.server import segment
from ledger.server.http_input import BODY_TIMEOUT, FORM, JSON, TEXT, basic_credentials, decode_json, read_body
from ledger.server.offload import in_ingest_thread
from ledger.server.registry import Projects
from ledger.server.replies import HttpError, ok
from ledger.server.traffic import IngestMeter, meter

HTTPAPI_LIMIT = 1024 * 1024  # bytes; Amplitude's HTTP V2 API limit
BATCH_LIMIT = 20 * 1024 * 1024  # bytes; Amplitude's Batch API limit
FORM_LIMIT = 1024 * 1024
SEGMENT_LIMIT = 1024 * 1024
UPLOAD_JSON = (JSON, TEXT)  # browsers' beacons and Segment's analytics.js post JSON as text/plain

log = logging.getLogger("ledger.server")


class Upload(msgspec.Struct):
    """An HTTP V2 / Batch API body; each event stays raw so the ledger reports bad ones by index."""

    api_key: str | None = None
    events: list[msgspec.Raw] | None = None
    options: dict[str, Any] | None = None


class SegmentBatch(msgspec.Struct):
    """A Segment batch body (`sentAt` and `context` are not needed)."""

    batch: list[Any] | None = None
    write_key: Any = msgspec.field(default=None, name="writeKey")


Endpoint = Callable[[Request], Awaitable[Response]]


def ingest_routes(projects: Projects, body_timeout: float = BODY_TIMEOUT) -> list[Route]:
    """The ingest routes, accepting uploads for any configured API key into that key's project;
    bodies must arrive within `body_timeout` s."""

    def store_upload(body: bytes) -> Response:
        upload = decode_json(body, Upload)
        ledger = projects.for_upload(upload.api_key)
        if not upload.events:
            raise InvalidRequest.missing_field("events")
        min_id_length = check_min_id_length((upload.options or {}).get("min_id_length"))
        return _ingested(ledger.ingest(upload.events, min_id_length), len(body), meter(ledger))

    def endpoint(limit: int) -> Endpoint:
        async def upload(request: Request) -> Response:
            body = await read_body(request, UPLOAD_JSON, limit, body_timeout)
            return await in_ingest_thread(store_upload, body)

        return upload

    def store_identifications(body: bytes) -> Response:
        try:
            form = parse_qs(body.decode(), keep_blank_values=True, errors="strict", max_num_fields=16)
        except ValueError:
            raise InvalidRequest.bad_body("Invalid form body") from None
        ledger = projects.for_upload(form.get("api_key", [""])[-1])
        text = form.get("identification", [""])[-1]
        if not text:
            raise InvalidRequest.missing_field("identification")
        found = decode_json(text.encode(), Any)
        identifications = found if isinstance(found, list) else [found]
        if not identifications:
            raise InvalidRequest.missing_field("identification")
        return _ingested(ledger.identify(identifications), len(body), meter(ledger))

    async def identify(request: Request) -> Response:
        body = await read_body(request, FORM, FORM_LIMIT, body_timeout)
        return await in_ingest_thread(store_identifications, body)

    def store_segment(ledger: IdentityLedger | None, body: bytes, kind: str | None) -> Response:
        """A batch, or one message of type `kind`; without Basic credentials the body's `writeKey` must be known."""
        if kind is None:
            upload = decode_json(body, SegmentBatch)
            batch, write_key = upload.batch, upload.write_key
        else:
            message = decode_json(body, dict[str, Any])
            batch, write_key = [{**message, "type": kind}], message.get("writeKey")
        if ledger is None:  # no Basic credentials: the body's `writeKey` must be known
            ledger = projects.uploading(write_key) if isinstance(write_key, str) else None
            if ledger is None:
                raise HttpError.unauthorized()
        if not batch:
            raise InvalidRequest.missing_field("batch")
        events, origins = segment.to_amplitude(batch)
        try:
            report = ledger.ingest(events)
        except InvalidRequest as error:
            raise segment.renumber(error, origins) from None
        return _ingested(report, len(body), meter(ledger))

    def segment_endpoint(kind: str | None) -> Endpoint:
        async def segment_upload(request: Request) -> Response:
            sent = basic_credentials(request)
            ledger = None if sent is None else projects.uploading(sent[0])
            if sent is not None and ledger is None:
                raise HttpError.unauthorized()
            body = await read_body(request, UPLOAD_JSON, SEGMENT_LIMIT, body_timeout)
            return await in_ingest_thread(store_segment, ledger, body, kind)

        return segment_upload

    return [
        Route("/2/httpapi", endpoint(HTTPAPI_LIMIT), methods=["POST"]),
        Route("/batch", endpoint(BATCH_LIMIT), methods=["POST"]),
        Route("/identify", identify, methods=["POST"]),
        *(Route(path, segment_endpoint(None), methods=["POST"]) for path in segment.BATCH_PATHS),
        *(Route(path, segment_endpoint(kind), methods=["POST"]) for path, kind in segment.MESSAGE_PATHS.items()),
    ]


def _ingested(report: IngestReport, size: int, traffic: IngestMeter) -> Response:
    """Amplitude's success reply; duplicates are answered 200 but not counted as ingested (nor metered)."""
    traffic.record(report.ingested)
    for warning in report.warnings:
        log.warning(str(warning))
    return ok(events_ingested=report.ingested, payload_size_bytes=size, server_upload_time=report.server_time)
