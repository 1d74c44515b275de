"""The query API: who a user or device is, their timeline, merges, audit trail and counts.

Every route needs HTTP Basic `api_key:secret_key`. `?as_of=POSITION` or `?as_of=TIME`
(ISO-8601 with a time zone) answers from the ledger as it stood then (index lookups on the
read side's history, `IdentityLedger.as_of`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from msgspec import to_builtins
from msgspec.structs import asdict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger.ledger import IdentityLedger, LedgerView
from ledger.server.abandoned import while_connected
from ledger.server.http_input import basic_credentials, query_int, to_int
from ledger.server.registry import Projects
from ledger.server.replies import HttpError, ok
from ledger.time_travel import AsOf, parse_as_of
from projections.models import Identity

PAGE = 100
MAX_PAGE = 1000

Reader = IdentityLedger | LedgerView
Answer = Callable[[Reader], Response]


def query_routes(projects: Projects) -> list[Route]:
    """The read-only routes, each answering from the project of the caller's API key and secret key."""

    def ask(ledger: IdentityLedger, question: Answer, as_of: AsOf | None, cancelled: threading.Event) -> Response:
        """Ask the live ledger, or the ledger as it stood at `as_of` (unless the client has gone)."""
        if as_of is None:
            return question(ledger)
        with ledger.as_of(as_of, cancelled) as view:
            return question(view)

    def route(path: str, make_question: Callable[[Request], Answer]) -> Route:
        """A GET route: authenticate, read the parameters, then ask the ledger in a worker thread."""

        async def endpoint(request: Request) -> Response:
            ledger = projects.reading(*(basic_credentials(request) or ("", "")))
            if ledger is None:
                raise HttpError.unauthorized()
            question, as_of = make_question(request), _as_of(request)
            return await while_connected(request, lambda cancelled: ask(ledger, question, as_of, cancelled))

        return Route(path, endpoint, methods=["GET"])

    return [
        route("/v1/identities", _identity_of_id),
        route("/v1/identities/{amplitude_id}", _identity_of_amplitude_id),
        route("/v1/identities/{amplitude_id}/timeline", _timeline),
        route("/v1/merges", _merges),
        route("/v1/audit", _audit),
        route("/v1/stats", _stats),
        route("/v1/corrections", _corrections),
        route("/v1/groups/{group_type}/{group_value:path}", _group),
        route("/v1/mappings", _mappings),
        route("/v1/explain/{position}", _explain),
    ]


def health_route(projects: Projects) -> Route:
    """Unauthenticated liveness for load balancers: answers once every project's database does."""

    async def healthz(_: Request) -> Response:
        await run_in_threadpool(lambda: [project.ledger.position for project in projects.projects])
        return ok(status="ok")

    return Route("/healthz", healthz, methods=["GET"])


def _as_of(request: Request) -> AsOf | None:
    """The ledger position or time (ISO-8601) to answer at; None for now. Checked against the
    ledger by `as_of` (past its end, in the future: a 400)."""
    text = request.query_params.get("as_of")
    return None if text is None else parse_as_of(text)


def _one_of(request: Request, *names: str) -> tuple[str, str]:
    """The single ID parameter a lookup needs: exactly one of `names`."""
    given = [(name, request.query_params[name]) for name in names if name in request.query_params]
    if len(given) != 1:
        raise HttpError.bad_parameter("give exactly one of " + ", ".join(names))
    if "\x00" in given[0][1]:  # no ID holds NUL (PostgreSQL could not even compare one)
        raise HttpError.bad_parameter(f"{given[0][0]} must not contain NUL")
    return given[0]


def _amplitude_id(request: Request) -> int:
    return to_int(request.path_params["amplitude_id"], "amplitude_id", low=1)


def _person(read: Reader, amplitude_id: int) -> Identity:
    identity = read.identity(amplitude_id)
    if identity is None:
        forgotten = " (forgotten by a deletion job)" if read.is_forgotten(amplitude_id) else ""
        raise HttpError.not_found(f"no identity with amplitude_id {amplitude_id}{forgotten}")
    return identity


def _identity_of_id(request: Request) -> Answer:
    name, value = _one_of(request, "user_id", "device_id")

    def question(read: Reader) -> Response:
        identity = read.resolve(**{name: value})
        if identity is None:
            raise HttpError.not_found(f"no identity for this {name}")
        return ok(**to_builtins(identity))

    return question


def _identity_of_amplitude_id(request: Request) -> Answer:
    amplitude_id = _amplitude_id(request)
    return lambda read: ok(**to_builtins(_person(read, amplitude_id)))


def _timeline(request: Request) -> Answer:
    """One page of the person's merged timeline; `next` is the `after` of the following page."""
    amplitude_id = _amplitude_id(request)
    after = query_int(request, "after", default=0)
    limit = query_int(request, "limit", default=PAGE, low=1, high=MAX_PAGE)

    def question(read: Reader) -> Response:
        person = _person(read, amplitude_id)
        events = read.timeline(amplitude_id, after=after, limit=limit + 1)
        following = events[limit - 1].position if len(events) > limit else None
        return ok(amplitude_id=person.amplitude_id, events=events[:limit], next=following)

    return question


def _audit(request: Request) -> Answer:
    name, value = _one_of(request, "user_id", "device_id", "amplitude_id")
    key: Any = to_int(value, name, low=1) if name == "amplitude_id" else value

    def question(read: Reader) -> Response:
        entries = read.audit(**{name: key})
        if not entries:
            raise HttpError.not_found(f"no identity facts for this {name}")
        return ok(entries=entries)

    return question


def _group(request: Request) -> Answer:
    """A group's properties, the amplitude IDs that have been members, and when each joined."""
    group_type, group_value = request.path_params["group_type"], request.path_params["group_value"]
    if "\x00" in group_type + group_value:
        raise HttpError.bad_parameter("a group type or name must not contain NUL")

    def question(read: Reader) -> Response:
        group = read.group(group_type, group_value)
        if group is None:
            raise HttpError.not_found("no call ever named this group")
        return ok(**asdict(group))

    return question


def _mappings(request: Request) -> Answer:
    """Every mapping and unmapping (who asked, when), or those naming `user_id` on either side."""
    user_id = request.query_params.get("user_id")
    if user_id is not None and "\x00" in user_id:
        raise HttpError.bad_parameter("user_id must not contain NUL")
    return lambda read: ok(mappings=read.mappings(user_id))


def _merges(_: Request) -> Answer:
    return lambda read: ok(merges=read.merges())


def _corrections(_: Request) -> Answer:
    return lambda read: ok(corrections=read.corrections())


def _explain(request: Request) -> Answer:
    position = to_int(request.path_params["position"], "position", low=1)

    def question(read: Reader) -> Response:
        explanation = read.explain(position)
        if explanation is None:
            raise HttpError.not_found(f"no tracked event at position {position}")
        return ok(**asdict(explanation))

    return question


def _stats(_: Request) -> Answer:
    return lambda read: ok(position=read.position, **asdict(read.stats()))
