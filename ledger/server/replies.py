"""What the server says back: JSON replies that always carry `code`, and the HTTP-only errors.

Request errors the ledger itself defines (missing field, bad body, payload too large, invalid
API key, bad events) are built in `ledger.errors`; the ones below exist only because of HTTP
(authentication, routing, media types, query parameters). Both are `InvalidRequest`s, so the
server maps every refusal to a reply in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

from ledger.errors import InvalidRequest

_encoder = msgspec.json.Encoder()


def reply(body: dict[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON reply; `body` already holds `code` (the Amplitude SDK reads the status from it)."""
    return Response(_encoder.encode(body), status, headers, media_type="application/json")


def ok(**fields: Any) -> Response:
    """A 200 reply: `code` first, then the answer (msgspec Structs are encoded as they are)."""
    return reply({"code": 200, **fields})


def refusal(error: InvalidRequest) -> Response:
    """The reply for a refused request: exactly the error's status and body."""
    headers = {"WWW-Authenticate": 'Basic realm="ledger"'} if error.status == 401 else None
    if error.status == 408:  # the rest of the body may still be on its way: do not wait for it
        headers = {"Connection": "close"}
    return reply(error.body, error.status, headers)


class HttpError(InvalidRequest):
    """A request refused for an HTTP reason rather than a ledger rule; nothing is stored."""

    @classmethod
    def unauthorized(cls) -> HttpError:
        return cls(401, {"code": 401, "error": "Unauthorized"})

    @classmethod
    def origin_not_allowed(cls, origin: str) -> HttpError:
        """A web page's origin the operator did not name (CORS); nothing is stored."""
        return cls(403, {"code": 403, "error": f"Origin not allowed: {origin}"})

    @classmethod
    def not_found(cls, what: str) -> HttpError:
        return cls(404, {"code": 404, "error": f"Not found: {what}"})

    @classmethod
    def request_timeout(cls, seconds: float) -> HttpError:
        return cls(408, {"code": 408, "error": f"Request body not received within {seconds:g} seconds"})

    @classmethod
    def method_not_allowed(cls) -> HttpError:
        return cls(405, {"code": 405, "error": "Method not allowed"})

    @classmethod
    def unsupported_media_type(cls, expected: str) -> HttpError:
        return cls(415, {"code": 415, "error": f"Content-Type must be {expected}"})

    @classmethod
    def unsupported_encoding(cls) -> HttpError:
        return cls(415, {"code": 415, "error": "Content-Encoding must be gzip or identity"})

    @classmethod
    def bad_parameter(cls, message: str) -> HttpError:
        return cls(400, {"code": 400, "error": f"Invalid query parameters: {message}"})
