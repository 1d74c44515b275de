"""Web pages on other origins: CORS on the upload endpoints only, and the bodies browser SDKs really post.

What a browser does is replayed here header for header (its preflight, its `Origin`, a
beacon's `text/plain` JSON, Segment analytics.js's one-message posts); tests/browser/test_sdk_browser.py
drives the real SDKs in a real browser.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger import IdentityLedger
from ledger.server.app import create_app
from ledger.server.cors import checked_origins
from ledger.server.credentials import Credentials, ServerConfigError
from ledger.server.ingest_api import ingest_routes
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY, basic, running_app

PAGE = "http://127.0.0.1:5173"
SHOP = "https://shop.example.com"
class _NoLedger:
    """Stands in for a ledger while the upload routes are listed: nothing is stored."""


UPLOAD_PATHS = [route.path for route in ingest_routes(_NoLedger(), Credentials.configured([API_KEY], SECRET_KEY))]  # type: ignore


def preflight(http: httpx.Client, path: str, origin: str = PAGE, **headers: str) -> httpx.Response:
    """What a browser sends before a POST with `Content-Type: application/json` or `Authorization`."""
    return http.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                       "Access-Control-Request-Headers": "authorization,content-type", **headers})


def upload(*events: Any) -> bytes:
    return json.dumps({"api_key": API_KEY, "events": list(events)}).encode()


def test_the_upload_paths_are_the_amplitude_and_segment_ones() -> None:
    assert set(UPLOAD_PATHS) == {
        "/2/httpapi", "/batch", "/identify", "/v1/batch", "/v1/b",
        *(f"/v1/{name}" for name in ("t", "track", "i", "identify", "p", "page", "s", "screen", "g", "group",
                                     "a", "alias")),
    }


@pytest.mark.parametrize("path", UPLOAD_PATHS)
def test_preflight_on_every_upload_path(http: httpx.Client, lg: IdentityLedger, path: str) -> None:
    reply = preflight(http, path)
    assert reply.status_code == 204 and reply.content == b""
    assert reply.headers["access-control-allow-origin"] == "*"
    assert reply.headers["access-control-allow-methods"] == "POST, OPTIONS"
    allowed = {name.strip().lower() for name in reply.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "content-encoding", "authorization", "x-retry-count"} <= allowed
    assert reply.headers["access-control-max-age"] == "86400"
    assert lg.position == 0


def test_replies_and_error_replies_carry_the_origin_header(http: httpx.Client, lg: IdentityLedger) -> None:
    origin = {"Origin": PAGE, "Content-Type": "application/json"}
    stored = http.post("/2/httpapi", content=upload(event("device-A")), headers=origin)
    assert (stored.status_code, stored.headers["access-control-allow-origin"]) == (200, "*")
    assert stored.headers["access-control-expose-headers"] == "Retry-After"
    unknown_key = http.post("/2/httpapi", content=b'{"api_key": "nope", "events": []}', headers=origin)
    assert unknown_key.status_code == 400 and unknown_key.headers["access-control-allow-origin"] == "*"
    bad_event = http.post("/2/httpapi", content=upload({"device_id": "device-A"}), headers=origin)
    assert bad_event.json()["events_with_missing_fields"] == {"event_type": [0]}
    assert bad_event.headers["access-control-allow-origin"] == "*"
    html = {**origin, "Content-Type": "text/html"}
    wrong_type = http.post("/2/httpapi", content=upload(event("device-A")), headers=html)
    assert wrong_type.status_code == 415 and wrong_type.headers["access-control-allow-origin"] == "*"
    assert lg.stats().events == 1


def test_without_an_origin_there_are_no_cors_headers(http: httpx.Client) -> None:
    reply = http.post("/2/httpapi", content=upload(event("device-A")), headers={"Content-Type": "application/json"})
    assert reply.status_code == 200
    assert not [name for name in reply.headers if name.startswith("access-control-")]


@pytest.mark.parametrize("path", ["/v1/identities", "/v1/stats", "/v1/merges", "/healthz"])
def test_reads_stay_closed_to_other_origins(http: httpx.Client, query: httpx.Client, path: str) -> None:
    refused = preflight(http, path)
    assert refused.status_code == 405
    answered = query.get(path, params={"device_id": "device-A"}, headers={"Origin": PAGE})
    assert answered.status_code in (200, 404)
    for reply in (refused, answered):
        assert not [name for name in reply.headers if name.startswith("access-control-")]


@pytest.mark.parametrize("content_type", ["text/plain;charset=UTF-8", "application/json; charset=UTF-8", "text/plain"])
def test_json_posted_as_text_or_with_a_charset_is_json(http: httpx.Client, lg: IdentityLedger,
                                                       content_type: str) -> None:
    """navigator.sendBeacon(url, string) labels the body `text/plain;charset=UTF-8`."""
    reply = http.post("/2/httpapi", content=upload(event("device-A")), headers={"Content-Type": content_type})
    assert (reply.status_code, reply.json()["events_ingested"]) == (200, 1)
    assert lg.resolve(device_id="device-A").amplitude_id == 1


def segment_message(kind: str, **fields: Any) -> dict[str, Any]:
    """One message as analytics.js posts it to /v1/<first letter of its type>."""
    return {"type": kind, "anonymousId": "anon-device-1", "messageId": f"ajs-next-{kind}-{len(fields)}",
            "timestamp": "2026-11-28T10:00:00.000Z", "sentAt": "2026-11-28T10:00:00.050Z", "writeKey": API_KEY,
            "context": {"library": {"name": "analytics.js", "version": "npm:next-1.84.3"}}, "integrations": {},
            "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []}, **fields}


def test_segment_one_message_posts_with_the_write_key_in_the_body(http: httpx.Client, lg: IdentityLedger) -> None:
    text = {"Content-Type": "text/plain", "Origin": PAGE}
    posts = [("/v1/p", segment_message("page", name=None, properties={"path": "/"})),
             ("/v1/t", segment_message("track", event="Signed In", userId="user-alice")),
             ("/v1/i", segment_message("identify", userId="user-alice", traits={"plan": "pro"}))]
    for path, message in posts:
        reply = http.post(path, content=json.dumps(message).encode(), headers=text)
        assert (reply.status_code, reply.headers["access-control-allow-origin"]) == (200, "*"), reply.text
    person = lg.resolve(device_id="anon-device-1")
    assert (person.user_id, person.user_properties) == ("user-alice", {"plan": "pro"})
    assert lg.stats().events == 2  # the page view and the track; an identify counts no event


def test_segment_batching_mode_posts_to_v1_b(http: httpx.Client, lg: IdentityLedger) -> None:
    body = {"writeKey": API_KEY, "sentAt": "2026-11-28T10:00:00.050Z",
            "batch": [segment_message("track", event="view"), segment_message("track", event="buy", messageId="m-2")]}
    reply = http.post("/v1/b", content=json.dumps(body).encode(), headers={"Content-Type": "text/plain"})
    assert (reply.status_code, lg.stats().events) == (200, 2)


@pytest.mark.parametrize("write_key", [None, "not-a-key", 12345])
def test_segment_without_a_known_write_key_anywhere(http: httpx.Client, lg: IdentityLedger, write_key: Any) -> None:
    message = segment_message("track", event="view", writeKey=write_key)
    text = {"Content-Type": "text/plain", "Origin": PAGE}
    reply = http.post("/v1/t", content=json.dumps(message).encode(), headers=text)
    assert (reply.status_code, reply.json()) == (401, {"code": 401, "error": "Unauthorized"})
    assert reply.headers["access-control-allow-origin"] == "*"
    assert lg.position == 0


def test_segment_basic_credentials_win_over_the_body(http: httpx.Client, lg: IdentityLedger) -> None:
    """analytics.js sends both; a wrong header is refused even when the body names a good key."""
    body = json.dumps(segment_message("track", event="view")).encode()
    refused = http.post("/v1/t", content=body, headers={"Content-Type": "text/plain", **basic("not-a-key", "")})
    assert refused.status_code == 401
    stored = http.post("/v1/t", content=body, headers={"Content-Type": "text/plain", **basic(API_KEY, "")})
    assert stored.status_code == 200 and lg.stats().events == 1


# -- an operator who names the origins ----------------------------------------------------------------


@pytest.fixture
def shop_only(lg: IdentityLedger) -> Iterator[httpx.Client]:
    app = create_app(lg, [API_KEY], SECRET_KEY, cors_origins=[SHOP, "http://localhost:3000"])
    with running_app(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


def test_a_named_origin_is_echoed_and_others_are_refused(shop_only: httpx.Client, lg: IdentityLedger) -> None:
    allowed = preflight(shop_only, "/2/httpapi", SHOP)
    assert allowed.status_code == 204
    assert (allowed.headers["access-control-allow-origin"], allowed.headers["vary"]) == (SHOP, "Origin")
    stored = shop_only.post("/2/httpapi", content=upload(event("device-A")),
                            headers={"Origin": SHOP, "Content-Type": "text/plain"})
    assert (stored.status_code, stored.headers["access-control-allow-origin"]) == (200, SHOP)
    before = lg.position
    for reply in (preflight(shop_only, "/2/httpapi", "https://evil.example"),
                  shop_only.post("/2/httpapi", content=upload(event("device-B")),
                                 headers={"Origin": "https://evil.example", "Content-Type": "text/plain"})):
        assert reply.status_code == 403
        assert reply.json() == {"code": 403, "error": "Origin not allowed: https://evil.example"}
        assert "access-control-allow-origin" not in reply.headers
    assert lg.position == before
    server_side = shop_only.post("/2/httpapi", content=upload(event("device-C")),
                                 headers={"Content-Type": "application/json"})
    assert server_side.status_code == 200, "servers send no Origin and are not browsers' business"


@pytest.mark.parametrize("origins", [["shop.example.com"], [SHOP + "/"], [SHOP + "/path"], ["ftp://files.example"]])
def test_only_origins_can_be_named(origins: list[str]) -> None:
    with pytest.raises(ServerConfigError, match="not a CORS origin"):
        checked_origins(origins)


def test_no_origins_or_a_star_mean_any() -> None:
    assert checked_origins(None) == checked_origins([]) == checked_origins([SHOP, "*"]) == {"*"}
