"""The explorer's routes: search, figures, person pages, each at any past position (`?as_of=`).

Same HTTP Basic credentials as the query API, challenged in a realm of its own (`ledger explorer`)
so that a browser never offers the explorer's cached credentials to the API (docs/privacy.md). Every
problem a visitor can cause (unknown ID, bad parameter, unknown path) gets an HTML page with
its status, never a traceback. Templates escape every value (Jinja2 autoescape), and the
Content-Security-Policy allows no script at all, so a hostile ID can only ever show as text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from ledger.errors import InvalidRequest
from ledger.ledger import IdentityLedger
from ledger.server.abandoned import while_connected
from ledger.server.credentials import Credentials
from ledger.server.explorer import pages
from ledger.server.http_input import basic_credentials, query_int, to_int
from ledger.server.traffic import MINUTES, meter
from ledger.time_travel import parse_as_of

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
CHALLENGE = {"WWW-Authenticate": 'Basic realm="ledger explorer"'}
STYLESHEET = (files(__package__) / "static" / "explorer.css").read_bytes()


class PageError(Exception):
    """A visitor's request that has no page: shown as an HTML page with this status and message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _when(ms: int) -> str:
    """Milliseconds since the epoch as UTC, to the millisecond (calls often land within one second)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader(__package__, "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters.update(when=_when, count="{:,}".format, json=lambda value: msgspec.json.encode(value).decode(),
                          segment=lambda value: quote(value, safe=""))


def explorer(ledger: IdentityLedger, credentials: Credentials) -> Mount:
    """The explorer's pages under /ui, for callers holding an API key and the secret key."""

    @contextmanager
    def reading(request: Request, as_of: int | None) -> Iterator[pages.Reader]:
        if as_of is None:
            yield ledger
        else:  # a replay, stopped if the visitor leaves (the endpoint puts `cancelled` in the state)
            with ledger.as_of(as_of, request.state.cancelled) as view:
                yield view

    def home(request: Request, as_of: int | None) -> Response:
        with reading(request, as_of) as read:
            figures = pages.figures(read)
        traffic = meter(ledger).per_minute() if as_of is None else []  # arrivals are news of now, not of then
        return _page(request, "home.html", as_of, figures=figures, traffic=traffic,
                     minutes=MINUTES)

    def search(request: Request, as_of: int | None) -> Response:
        text = request.query_params.get("q", "")
        if not text:
            return RedirectResponse(_link(request, "/", as_of=as_of), 303)
        with reading(request, as_of) as read:
            found = pages.matches(read, text)
        if len(found) == 1:
            return RedirectResponse(_link(request, f"/people/{found[0].amplitude_id}", as_of=as_of), 303)
        return _page(request, "search.html", as_of, status=200 if found else 404, q=text, matches=found)

    def person(request: Request, as_of: int | None) -> Response:
        amplitude_id = _path_int(request.path_params["amplitude_id"])
        page = query_int(request, "page", default=1, low=1, high=pages.MAX_PAGE)
        explained = query_int(request, "explain", default=0, low=0)  # an event row's "why here?" (0: none)
        with reading(request, as_of) as read:
            shown = pages.person(read, amplitude_id, page)
            why = read.explain(explained) if explained and isinstance(shown, pages.Person) else None
        if shown is None:
            then = "" if as_of is None else f" at position {as_of}"
            message = f"The ledger has no amplitude ID {amplitude_id}{then}."
            changes = pages.steps(ledger, amplitude_id, as_of) if as_of is not None else None
            return _page(request, "missing.html", as_of, status=404, message=message, amplitude_id=amplitude_id,
                         steps=changes)
        template = "person.html" if isinstance(shown, pages.Person) else "merged.html"
        return _page(request, template, as_of, shown=shown, amplitude_id=amplitude_id, why=why, page=page,
                     steps=pages.steps(ledger, amplitude_id, as_of))

    def group(request: Request, as_of: int | None) -> Response:
        group_type, group_value = request.path_params["group_type"], request.path_params["group_value"]
        if "\x00" in group_type + group_value:
            raise PageError(404, "Not found", "No group type or name holds NUL.")
        with reading(request, as_of) as read:
            found = read.group(group_type, group_value)
        if found is None:
            raise PageError(404, "Not found", "No call named this group" + ("" if as_of is None else " by then") + ".")
        return _page(request, "group.html", as_of, group=found)

    def unknown(request: Request, _: int | None) -> Response:
        raise PageError(404, "Not found", "The explorer has no page at this address.")

    def route(path: str, show: Callable[[Request, int | None], Response]) -> Route:
        async def endpoint(request: Request) -> Response:
            user, password = basic_credentials(request) or ("", "")
            if not credentials.admits(user, password):
                return _error(request, PageError(401, "Sign in", "The explorer needs an API key (user name) "
                                                 "and the secret key (password)."), CHALLENGE)
            try:
                as_of = _as_of(request, ledger)
                return await while_connected(request, lambda cancelled: _showing(show, request, as_of, cancelled))
            except PageError as error:
                return _error(request, error)
            except InvalidRequest as error:  # a bad query parameter
                return _error(request, PageError(error.status, "Bad request", str(error.body.get("error", ""))))

        return Route(path, endpoint, methods=["GET"])

    return Mount("/ui", routes=[
        route("/", home),
        route("/search", search),
        route("/people/{amplitude_id}", person),
        route("/groups/{group_type}/{group_value:path}", group),
        route("/explorer.css", _stylesheet),
        route("/{path:path}", unknown),
    ])


def _showing(show: Callable[[Request, int | None], Response], request: Request, as_of: int | None,
             cancelled: threading.Event) -> Response:
    request.state.cancelled = cancelled
    return show(request, as_of)


def _stylesheet(_: Request, __: int | None) -> Response:
    return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "private, max-age=3600"})


def _as_of(request: Request, ledger: IdentityLedger) -> int | None:
    """The position asked for (a time, ISO-8601, is turned into its position: links keep it); None for now."""
    text = request.query_params.get("as_of")
    if text is None or text == "":
        return None
    with ledger.as_of(parse_as_of(text)) as view:  # past the end, in the future: a 400 page
        return view.position


def _path_int(text: str) -> int:
    try:
        return to_int(text, "amplitude_id", low=1)
    except InvalidRequest:
        raise PageError(404, "Not found", "An amplitude ID is a positive whole number.") from None


def _link(request: Request, path: str, **params: Any) -> str:
    """A path inside the explorer (wherever it is mounted), with the query parameters that are set."""
    query = urlencode({name: value for name, value in params.items() if value is not None})
    root: str = request.scope.get("root_path", "")
    return root + path + ("?" + query if query else "")


def _page(request: Request, template: str, as_of: int | None, status: int = 200, **context: Any) -> Response:
    def link(path: str, **params: Any) -> str:
        return _link(request, path, **{"as_of": as_of, **params})

    html = _templates.get_template(template).render(as_of=as_of, link=link, root=_link(request, "/"), **context)
    return HTMLResponse(html, status, HEADERS)


def _error(request: Request, error: PageError, headers: dict[str, str] | None = None) -> Response:
    response = _page(request, "error.html", None, error.status, error=error)
    response.headers.update(headers or {})
    return response
