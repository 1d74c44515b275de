"""The ingest endpoints over raw HTTP: the success reply, retries, limits, and every refusal byte for byte.

A refusal must leave the ledger exactly where it was (`lg.position` unchanged) and must
never be a 500 or show a traceback, whatever the client sends.
"""

from __future__ import annotations

import gzip
import json
import socket
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from ledger import IdentityLedger
from ledger.errors import ConflictRetriesExhausted
from ledger.server.app import create_app
from ledger.server.http_input import MAX_JSON_DEPTH
from ledger.server.ingest_api import HTTPAPI_LIMIT
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY, basic

JSON_TYPE = {"Content-Type": "application/json"}
BAD_BODY = {"code": 400, "error": "Invalid JSON request body"}
TOO_LARGE = {"code": 413, "error": "Payload too large"}


def post(http: httpx.Client, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return http.post(path, content=body, headers=JSON_TYPE if headers is None else headers)


def upload(*events: Any, **fields: Any) -> bytes:
    return json.dumps({"api_key": API_KEY, "events": list(events), **fields}).encode()


def refused(lg: IdentityLedger, reply: httpx.Response, status: int, body: dict[str, Any]) -> None:
    """The reply is exactly `body` with `status`, carries `code`, and nothing was stored."""
    assert (reply.status_code, reply.json()) == (status, body)
    assert reply.headers["content-type"] == "application/json"
    assert list(reply.json())[:2] == ["code", "error"]
    assert lg.position == 0


# -- success and retries ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/2/httpapi", "/batch"])
def test_success_reply_is_amplitudes(http: httpx.Client, lg: IdentityLedger, path: str) -> None:
    body = upload(event("device-A"), event("device-A", "user-Ann"))
    reply = post(http, path, body)
    assert reply.status_code == 200
    assert reply.json() == {
        "code": 200, "events_ingested": 2, "payload_size_bytes": len(body),
        "server_upload_time": lg.events()[0].server_time,
    }
    assert list(reply.json()) == ["code", "events_ingested", "payload_size_bytes", "server_upload_time"]
    assert lg.stats().events == 2


def test_a_retried_request_is_answered_200_and_stored_once(http: httpx.Client, lg: IdentityLedger) -> None:
    body = upload(event("device-A", insert_id="ins-1"), event("device-B", insert_id="ins-2"))
    assert post(http, "/2/httpapi", body).json()["events_ingested"] == 2
    position = lg.position
    again = post(http, "/2/httpapi", body)
    assert again.status_code == 200 and again.json()["events_ingested"] == 0
    assert lg.position == position and lg.stats().events == 2


def test_batch_takes_bodies_over_the_httpapi_limit(http: httpx.Client, lg: IdentityLedger) -> None:
    padding = "x" * 1000
    body = upload(*[event(f"device-{i:05}", event_properties={"padding": padding}) for i in range(1500)])
    assert len(body) > HTTPAPI_LIMIT
    refused(lg, post(http, "/2/httpapi", body), 413, TOO_LARGE)
    assert post(http, "/batch", body).json()["events_ingested"] == 1500


def test_identify_api_takes_a_form_with_one_object_or_an_array(http: httpx.Client, query: httpx.Client) -> None:
    one = {"user_id": "user-Ann", "device_id": "device-A", "user_properties": {"plan": "pro"}}
    several = [{"user_id": "user-Ann", "user_properties": {"$add": {"logins": 1}}}, {"device_id": "device-B"}]
    for identification in (one, several):
        reply = http.post("/identify", data={"api_key": API_KEY, "identification": json.dumps(identification)})
        assert reply.status_code == 200 and reply.json()["code"] == 200
    ann = query.get("/v1/identities", params={"user_id": "user-Ann"}).json()
    assert ann["user_properties"] == {"plan": "pro", "logins": 1}
    assert query.get("/v1/stats").json()["events"] == 0  # identify calls count no event


def test_gzip_bodies_are_accepted(http: httpx.Client, lg: IdentityLedger) -> None:
    reply = post(http, "/2/httpapi", gzip.compress(upload(event("device-A"))),
                 {**JSON_TYPE, "Content-Encoding": "gzip"})
    assert reply.json()["events_ingested"] == 1


# -- request-level refusals --------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    b"",
    b"{",
    b"not json",
    b'{"api_key": "' + "caf\u00e9".encode("latin-1") + b'", "events": []}',  # not UTF-8
    b'{"api_key": "k", "events": [' + b"[" * 5000 + b"]" * 5000 + b"]}",  # deeper than the ledger's limit
])
def test_undecodable_bodies(http: httpx.Client, lg: IdentityLedger, body: bytes) -> None:
    refused(lg, post(http, "/2/httpapi", body), 400, BAD_BODY)


def nested_body(arrays: int, api_key: str = API_KEY) -> bytes:
    """A body nested 4 + `arrays` deep: the body, `events`, the event, `event_properties`, then arrays."""
    nested = b'{"event_type":"x","device_id":"device-A","event_properties":{"a":' + b"[" * arrays + b"]" * arrays + b"}}"
    return b'{"api_key":"%s","events":[%s]}' % (api_key.encode(), nested)


def test_the_ledger_decodes_bodies_100_deep_but_not_101(http: httpx.Client, lg: IdentityLedger) -> None:
    """The ledger's own limit, before any other check: every Python gives the same replies."""
    assert MAX_JSON_DEPTH == 100
    too_deep_property = {"code": 400, "error": "Invalid field values on some events",
                         "events_with_invalid_fields": {"event_properties": [0]}}
    refused(lg, post(http, "/2/httpapi", nested_body(96)), 400, too_deep_property)
    refused(lg, post(http, "/2/httpapi", nested_body(97)), 400, BAD_BODY)
    refused(lg, post(http, "/2/httpapi", nested_body(97, api_key="not-a-key")), 400, BAD_BODY)


@pytest.mark.parametrize("arrays", [500, 960, 996, 5000, 100_000])
def test_bodies_nested_past_any_decoders_limit_get_the_same_reply(http: httpx.Client, lg: IdentityLedger,
                                                                  arrays: int) -> None:
    refused(lg, post(http, "/2/httpapi", nested_body(arrays)), 400, BAD_BODY)


def test_brackets_inside_strings_do_not_count(http: httpx.Client, lg: IdentityLedger) -> None:
    text = '\\"' + "[{" * 500  # a backslash and a quote first, escaped in JSON: the string goes on
    reply = post(http, "/2/httpapi", upload(event("device-A", event_properties={"text": text})))
    assert reply.status_code == 200, reply.text
    [stored] = lg.timeline(1)
    assert stored.event_properties == {"text": text}


@pytest.mark.parametrize(("body", "error"), [
    (b"[]", "Invalid request body: Expected `object`, got `array`"),
    (b'{"api_key": 5, "events": []}', "Invalid request body: Expected `str | null`, got `int` - at `$.api_key`"),
    (b'{"api_key": "k", "events": {}}', "Invalid request body: Expected `array | null`, got `object` - at `$.events`"),
    (b'{"api_key": "k", "events": [], "options": []}',
     "Invalid request body: Expected `object | null`, got `array` - at `$.options`"),
])
def test_wrongly_shaped_bodies(http: httpx.Client, lg: IdentityLedger, body: bytes, error: str) -> None:
    refused(lg, post(http, "/2/httpapi", body), 400, {"code": 400, "error": error})


@pytest.mark.parametrize(("fields", "missing"), [
    ({"events": [event("device-A")]}, "api_key"),
    ({"api_key": "", "events": [event("device-A")]}, "api_key"),
    ({"api_key": API_KEY}, "events"),
    ({"api_key": API_KEY, "events": []}, "events"),
])
def test_missing_fields(http: httpx.Client, lg: IdentityLedger, fields: dict[str, Any], missing: str) -> None:
    reply = post(http, "/2/httpapi", json.dumps(fields).encode())
    refused(lg, reply, 400, {"code": 400, "error": "Request missing required field", "missing_field": missing})


def test_unknown_api_key(http: httpx.Client, lg: IdentityLedger) -> None:
    body = json.dumps({"api_key": "not-a-key", "events": [event("device-A")]}).encode()
    refused(lg, post(http, "/2/httpapi", body), 400, {"code": 400, "error": "Invalid API key: not-a-key"})


def test_bad_min_id_length_option(http: httpx.Client, lg: IdentityLedger) -> None:
    reply = post(http, "/2/httpapi", upload(event("device-A"), options={"min_id_length": "5"}))
    refused(lg, reply, 400, {"code": 400, "error": "Invalid options: min_id_length must be an integer from 0 to 1024"})


@pytest.mark.parametrize(("headers", "error"), [
    ({}, "Content-Type must be application/json or text/plain"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type must be application/json or text/plain"),
    ({"Content-Type": "text/html"}, "Content-Type must be application/json or text/plain"),
    ({**JSON_TYPE, "Content-Encoding": "br"}, "Content-Encoding must be gzip or identity"),
])
def test_wrong_content_type_or_encoding(http: httpx.Client, lg: IdentityLedger, headers: dict[str, str],
                                        error: str) -> None:
    refused(lg, post(http, "/2/httpapi", upload(event("device-A")), headers), 415, {"code": 415, "error": error})


def test_broken_gzip(http: httpx.Client, lg: IdentityLedger) -> None:
    headers = {**JSON_TYPE, "Content-Encoding": "gzip"}
    refused(lg, post(http, "/2/httpapi", b"\x1f\x8b not gzip", headers), 400, BAD_BODY)
    refused(lg, post(http, "/2/httpapi", gzip.compress(upload(event("device-A")))[:-12], headers), 400, BAD_BODY)


def test_a_small_gzip_that_inflates_past_the_limit(http: httpx.Client, lg: IdentityLedger) -> None:
    bomb = gzip.compress(b" " * (HTTPAPI_LIMIT + 1))
    reply = post(http, "/2/httpapi", bomb, {**JSON_TYPE, "Content-Encoding": "gzip"})
    refused(lg, reply, 413, TOO_LARGE)


def test_more_than_2000_events(http: httpx.Client, lg: IdentityLedger) -> None:
    refused(lg, post(http, "/2/httpapi", upload(*[event(f"device-{i:05}") for i in range(2001)])), 413, TOO_LARGE)


@pytest.mark.parametrize("length", ["2000000000", "1" * 19, "9" * 19])
def test_an_oversized_upload_is_refused_on_its_declared_length_before_it_is_sent(url: str, lg: IdentityLedger,
                                                                                  length: str) -> None:
    """However many digits the length has: a 19-digit one used to wait 30 s for the body, then 408."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(b"POST /2/httpapi HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: " + length.encode() + b"\r\n\r\n")
        answer = connection.makefile("rb")
        status = answer.readline()
        headers = dict(line.decode().lower().strip().split(": ", 1) for line in iter(answer.readline, b"\r\n"))
        body = answer.read(int(headers["content-length"]))
    assert status.startswith(b"HTTP/1.1 413 "), status
    assert json.loads(body) == TOO_LARGE
    assert lg.position == 0


def test_an_undeclared_stream_is_read_only_up_to_the_limit(lg: IdentityLedger) -> None:
    """Chunked bodies have no length: the server stops reading one chunk past the limit."""
    app = create_app(lg, [API_KEY], SECRET_KEY)
    chunk = b" " * 65536
    received = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += 1
        return {"type": "http.request", "body": chunk, "more_body": True}  # never ends

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/2/httpapi", "raw_path": b"/2/httpapi", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "root_path": ""}
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == TOO_LARGE
    assert received == HTTPAPI_LIMIT // len(chunk) + 1


@pytest.mark.parametrize(("length", "status"), [
    ("9" * 40, 413), ("1" * 19, 413), ("abc", 400), ("-5", 400), ("1e9", 400), ("５", 400)])
def test_any_declared_length_is_answered_at_once(lg: IdentityLedger, length: str, status: int) -> None:
    """Whatever an ASGI server passes on (h11 refuses some itself): never a wait for a body that will not come."""
    app = create_app(lg, [API_KEY], SECRET_KEY, body_timeout=60)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/2/httpapi", "raw_path": b"/2/httpapi", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", length.encode())],
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "root_path": ""}
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == status
    assert json.loads(sent[1]["body"]) == (TOO_LARGE if status == 413 else
                                           {"code": 400, "error": "Invalid Content-Length"})
    assert lg.position == 0


# -- event-level refusals: every bad index per field, Amplitude's keys ------------------------


def test_bad_events_are_listed_per_field_and_nothing_is_stored(http: httpx.Client, lg: IdentityLedger) -> None:
    events = [
        event("device-A"),
        {"device_id": "device-B"},
        event("device-C", user_id="null"),
        event("device-D", time=10**30),
        event("dev"),
        event("device-E", event_properties={"big": 10**30}),
        event("device-F", event_properties={"big": float("inf")}),
        "not an event",
        float("inf"),
    ]
    body = json.dumps({"api_key": API_KEY, "events": events}).encode().replace(b"Infinity", b"1e999")
    refused(lg, post(http, "/2/httpapi", body), 400, {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_invalid_fields": {"user_id": [2], "time": [3], "event_properties": [5, 6], "event": [7, 8]},
        "events_with_missing_fields": {"event_type": [1]},
        "events_with_invalid_id_lengths": {"device_id": [4]},
    })


# -- the Identify API's form ------------------------------------------------------------------


@pytest.mark.parametrize(("form", "status", "body"), [
    ({"identification": '{"user_id": "user-Ann"}'}, 400,
     {"code": 400, "error": "Request missing required field", "missing_field": "api_key"}),
    ({"api_key": API_KEY}, 400,
     {"code": 400, "error": "Request missing required field", "missing_field": "identification"}),
    ({"api_key": API_KEY, "identification": "[]"}, 400,
     {"code": 400, "error": "Request missing required field", "missing_field": "identification"}),
    ({"api_key": "not-a-key", "identification": '{"user_id": "user-Ann"}'}, 400,
     {"code": 400, "error": "Invalid API key: not-a-key"}),
    ({"api_key": API_KEY, "identification": "{"}, 400, BAD_BODY),
    ({"api_key": API_KEY, "identification": '{"user_properties": {}}'}, 400,
     {"code": 400, "error": "Invalid field values on some events",
      "events_with_missing_fields": {"user_id": [0], "device_id": [0]}}),
])
def test_identify_refusals(http: httpx.Client, lg: IdentityLedger, form: dict[str, str], status: int,
                           body: dict[str, Any]) -> None:
    refused(lg, http.post("/identify", data=form), status, body)


def test_identify_refuses_json_and_broken_forms(http: httpx.Client, lg: IdentityLedger) -> None:
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    refused(lg, post(http, "/identify", b'{"api_key": "k"}'), 415,
            {"code": 415, "error": "Content-Type must be application/x-www-form-urlencoded"})
    refused(lg, post(http, "/identify", b"api_key=%ff&identification=%7B%7D", form_type), 400,
            {"code": 400, "error": "Invalid form body"})


# -- Segment's batch API ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, basic("not-a-key", ""), {"Authorization": "Basic %%%"},
                                     {"Authorization": "Bearer " + API_KEY}])
def test_segment_without_a_known_write_key(http: httpx.Client, lg: IdentityLedger, headers: dict[str, str]) -> None:
    reply = post(http, "/v1/batch", b'{"batch": []}', {**JSON_TYPE, **headers})
    refused(lg, reply, 401, {"code": 401, "error": "Unauthorized"})
    assert reply.headers["www-authenticate"] == 'Basic realm="ledger"'


@pytest.mark.parametrize("body", [b"{}", b'{"batch": []}', b'{"batch": null}'])
def test_segment_without_a_batch(http: httpx.Client, lg: IdentityLedger, body: bytes) -> None:
    reply = post(http, "/v1/batch", body, {**JSON_TYPE, **basic(API_KEY, "")})
    refused(lg, reply, 400, {"code": 400, "error": "Request missing required field", "missing_field": "batch"})


# -- routing and the server's own failures -----------------------------------------------------


def test_unknown_path_and_wrong_method(http: httpx.Client, lg: IdentityLedger) -> None:
    refused(lg, http.get("/nowhere"), 404, {"code": 404, "error": "Not found: /nowhere"})
    wrong = http.get("/2/httpapi")
    refused(lg, wrong, 405, {"code": 405, "error": "Method not allowed"})
    assert wrong.headers["allow"] == "POST"


@pytest.mark.parametrize(("failure", "status", "body"), [
    (ConflictRetriesExhausted("gave up after 20 conflicting attempts"), 503,
     {"code": 503, "error": "gave up after 20 conflicting attempts"}),
    (RuntimeError("secret internals"), 500, {"code": 500, "error": "Internal server error"}),
])
def test_server_failures_are_json_without_details(http: httpx.Client, lg: IdentityLedger,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  failure: Exception, status: int, body: dict[str, Any]) -> None:
    def fail(*_: Any, **__: Any) -> None:
        raise failure

    monkeypatch.setattr(lg, "ingest", fail)
    refused(lg, post(http, "/2/httpapi", upload(event("device-A"))), status, body)
