"""Cross-origin uploads: web pages on other sites may send events, and only send events.

Browser SDKs post from the page's origin to the ledger's, so the browser asks first
(a preflight `OPTIONS`) whenever a request carries a header outside the CORS safelist
(`Content-Type: application/json`, `Authorization`, `Content-Encoding`), and lets the page
read a reply only when it carries `Access-Control-Allow-Origin`. Upload keys ship inside
those pages anyway, so by default any origin may upload; an operator can name the origins
allowed instead. Everything else (the query API, deletions, the explorer) gets no CORS
headers at all, so other sites' scripts can neither read it nor preflight it.

This sits in front of the routes as ASGI middleware and only touches requests to the
upload paths that carry an `Origin` header: servers and curl never send one.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.server.credentials import ServerConfigError
from ledger.server.replies import HttpError, refusal

ANY_ORIGIN = "*"
ALLOWED_HEADERS = "Content-Type, Content-Encoding, Authorization, Accept, X-Retry-Count"
MAX_AGE = "86400"  # seconds a browser may cache a preflight (browsers cap it lower)


def checked_origins(origins: Iterable[str] | None) -> frozenset[str]:
    """The allowed origins as `scheme://host[:port]`; none given (or `*`) means any origin.

    Raises ServerConfigError for anything that is not an origin (a path, a trailing slash, a
    bare host name), since such an entry would silently match nothing.
    """
    found = frozenset(origin.strip() for origin in origins or () if origin.strip())
    if not found or ANY_ORIGIN in found:
        return frozenset({ANY_ORIGIN})
    for origin in found:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or origin != f"{parts.scheme}://{parts.netloc}":
            raise ServerConfigError(
                f"not a CORS origin: {origin!r} (write it as scheme://host[:port], e.g. https://shop.example.com)"
            )
    return found


class UploadCors:
    """ASGI middleware answering preflights and adding CORS headers on the upload paths only."""

    def __init__(self, app: ASGIApp, paths: Iterable[str], origins: Iterable[str] | None = None) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.origins = checked_origins(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope) if scope["type"] == "http" and scope["path"] in self.paths else Headers()
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if not self._allows(origin):
            await refusal(HttpError.origin_not_allowed(origin))(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin)(scope, receive, send)
            return
        await self.app(scope, receive, self._with_cors_headers(origin, send))

    def _allows(self, origin: str) -> bool:
        return ANY_ORIGIN in self.origins or origin in self.origins

    def _origin_headers(self, origin: str) -> dict[str, str]:
        """`*` when any origin may upload, else the request's own origin (and replies vary by it)."""
        if ANY_ORIGIN in self.origins:
            return {"Access-Control-Allow-Origin": ANY_ORIGIN}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def _preflight(self, origin: str) -> Response:
        """The answer to a browser asking whether the page may post here: yes, with these headers."""
        return Response(status_code=204, headers={
            **self._origin_headers(origin),
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": MAX_AGE,
        })

    def _with_cors_headers(self, origin: str, send: Send) -> Send:
        """`send`, adding the CORS headers to the reply, errors included, so the page can read them."""
        extra = {**self._origin_headers(origin), "Access-Control-Expose-Headers": "Retry-After"}

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        return send_with_cors

