"""Cross-site request forgery: what a browser marks as cross-site changes nothing; servers and uploads still do."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ledger import IdentityLedger
from ledger.server.app import create_app
from ledger.server.credentials import ServerConfigError
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY, running_app

PATH = "/api/2/deletions/users"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ASK = "user_ids=alice%40example.org&requester=attacker"
NOVEMBER = {"start_day": "2023-11-01", "end_day": "2023-11-30"}


@pytest.fixture
def people(lg: IdentityLedger) -> IdentityLedger:
    lg.ingest([event("device-alice", "alice@example.org"), event("device-bob", "bob@example.org")])
    return lg


def own_origin(url: str) -> str:
    return url  # http://127.0.0.1:PORT, what a page served by the ledger itself sends


def other_port(url: str) -> str:
    parts = urlsplit(url)
    return f"http://{parts.hostname}:{(parts.port or 80) + 1}"


CROSS_SITE: list[tuple[str, Any]] = [
    ("another site", lambda url: {"Origin": "https://evil.example"}),
    ("another port", lambda url: {"Origin": other_port(url)}),
    ("another host of this port", lambda url: {"Origin": url.replace("127.0.0.1", "localhost")}),
    ("null", lambda url: {"Origin": "null"}),
    ("not an origin", lambda url: {"Origin": "evil"}),
    ("a broken origin", lambda url: {"Origin": "http://[::1"}),
    ("a port past 65535", lambda url: {"Origin": "http://127.0.0.1:99999"}),
    ("a huge origin", lambda url: {"Origin": "https://" + "e" * 8000 + ".example"}),
    ("cross-site fetch", lambda url: {"Sec-Fetch-Site": "cross-site"}),
    ("same-site fetch", lambda url: {"Sec-Fetch-Site": "same-site"}),
    ("own origin, yet cross-site", lambda url: {"Origin": own_origin(url), "Sec-Fetch-Site": "cross-site"}),
]
SAME_SITE: list[tuple[str, Any]] = [
    ("no header (a server, curl)", lambda url: {}),
    ("own origin", lambda url: {"Origin": own_origin(url)}),
    ("own origin in capitals", lambda url: {"Origin": own_origin(url).upper()}),
    ("same-origin fetch", lambda url: {"Origin": own_origin(url), "Sec-Fetch-Site": "same-origin"}),
    ("typed by the user", lambda url: {"Sec-Fetch-Site": "none"}),
    ("a no-referrer page of ours", lambda url: {"Origin": "null", "Sec-Fetch-Site": "same-origin"}),
]


def jobs(query: httpx.Client) -> list[Any]:
    listed = query.get(PATH, params=NOVEMBER)
    assert listed.status_code == 200, listed.text
    return listed.json()


@pytest.mark.parametrize(("case", "headers"), CROSS_SITE, ids=[case for case, _ in CROSS_SITE])
def test_a_cross_site_deletion_request_is_refused_and_queues_nothing(
        url: str, query: httpx.Client, people: IdentityLedger, case: str, headers: Any) -> None:
    reply = query.post(PATH, content=ASK, headers={**FORM, **headers(url)})
    assert reply.status_code == 403, reply.text
    body = reply.json()
    assert body["code"] == 403 and body["error"].startswith("Cross-site request refused: ")
    assert "access-control-allow-origin" not in reply.headers
    assert jobs(query) == []


@pytest.mark.parametrize(("case", "headers"), SAME_SITE, ids=[case for case, _ in SAME_SITE])
def test_a_request_no_browser_marks_as_cross_site_is_served(
        url: str, query: httpx.Client, people: IdentityLedger, case: str, headers: Any) -> None:
    reply = query.post(PATH, content=ASK, headers={**FORM, **headers(url)})
    assert reply.status_code == 200, reply.text
    assert [job["status"] for job in jobs(query)] == ["staging"]


def test_withdrawals_and_corrections_are_guarded_too(url: str, query: httpx.Client, people: IdentityLedger) -> None:
    assert query.post(PATH, content=ASK, headers=FORM).status_code == 200
    [job] = jobs(query)
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert query.delete(f"{PATH}/1/{job['day']}", headers=evil).status_code == 403
    assert jobs(query) == [job]
    correction = query.post("/v1/corrections", json={"user_id": "alice@example.org", "reason": "forged"}, headers=evil)
    assert correction.status_code == 403
    assert people.corrections() == []
    for method in ("PUT", "PATCH"):  # no such routes; refused before routing all the same
        assert query.request(method, "/v1/corrections", headers=evil).status_code == 403
    assert query.get("/v1/stats", headers=evil).status_code == 200  # reading changes nothing: CORS keeps it unreadable


@pytest.mark.parametrize("path", ["/2/httpapi", "/batch"])
def test_uploads_from_other_sites_keep_working(url: str, http: httpx.Client, people: IdentityLedger, path: str) -> None:
    """Browser SDKs post events from the shop's pages: cross-origin by design, and they carry no credentials."""
    reply = http.post(path, json={"api_key": API_KEY, "events": [event("device-carol")]},
                      headers={"Origin": "https://shop.example", "Sec-Fetch-Site": "cross-site"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["access-control-allow-origin"] == "*"
    assert people.resolve(device_id="device-carol") is not None


def test_an_origin_the_operator_trusts_may_request_deletions(people: IdentityLedger) -> None:
    app = create_app(people, [API_KEY], SECRET_KEY, trusted_origins=["https://admin.example"])
    with running_app(app) as url, httpx.Client(base_url=url, auth=(API_KEY, SECRET_KEY)) as query:
        trusted = {"Origin": "https://ADMIN.example:443", "Sec-Fetch-Site": "cross-site"}
        assert query.post(PATH, content=ASK, headers={**FORM, **trusted}).status_code == 200
        other = {"Origin": "https://admin.example:8443", "Sec-Fetch-Site": "cross-site"}
        assert query.post(PATH, content=ASK, headers={**FORM, **other}).status_code == 403
        assert [len(job["amplitude_ids"]) for job in jobs(query)] == [1]


@pytest.mark.parametrize(("origins", "complaint"), [
    (["*"], "cannot be '*'"), (["https://admin.example/"], "not a CORS origin"), (["admin.example"], "not a CORS origin")])
def test_a_trusted_origin_must_be_an_origin(lg: IdentityLedger, origins: list[str], complaint: str) -> None:
    with pytest.raises(ServerConfigError, match=complaint):
        create_app(lg, [API_KEY], SECRET_KEY, trusted_origins=origins)


def test_the_explorer_challenges_in_a_realm_of_its_own(url: str, http: httpx.Client, lg: IdentityLedger) -> None:
    """A browser offers cached credentials again only to the realm they were given for: never the API's."""
    assert http.get("/ui/").headers["www-authenticate"] == 'Basic realm="ledger explorer"'
    assert http.post(PATH, content=ASK, headers=FORM).headers["www-authenticate"] == 'Basic realm="ledger"'


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_cross_site_user_mapping_is_refused_even_by_get(
        url: str, http: httpx.Client, people: IdentityLedger, method: str) -> None:
    """Amplitude's User Mapping API maps by GET too: an <img> on another site must not map users."""
    mapping = json.dumps({"user_id": "alice@example.org", "global_user_id": "bob@example.org"})
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    reply = http.request(method, "/usermap", params={"api_key": API_KEY, "mapping": mapping}, headers=evil)
    assert reply.status_code == 403, reply.text
    assert people.mappings() == []
    reply = http.request(method, "/usermap", params={"api_key": API_KEY, "mapping": mapping})
    assert reply.status_code == 200, reply.text
    assert [m.global_user_id for m in people.mappings()] == ["bob@example.org"]
