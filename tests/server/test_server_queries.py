"""The query API: authentication, each answer's shape, timeline pages, `as_of`, and its refusals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from ledger import IdentityLedger
from ledger.server.app import create_app, serve
from ledger.server.credentials import ServerConfigError
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY, query_client, running_app

UNAUTHORIZED = {"code": 401, "error": "Unauthorized"}
BAD = "Invalid query parameters: "
BAD_AMPLITUDE_ID = BAD + "amplitude_id must be an integer from 1 to 9223372036854775807"
BAD_LIMIT = BAD + "limit must be an integer from 1 to 1000"


def bad_position(name: str) -> str:
    return BAD + f"{name} must be an integer from 0 to 9223372036854775807"




def answer(query: httpx.Client, path: str, status: int = 200, **params: Any) -> dict[str, Any]:
    reply = query.get(path, params=params)
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["code"] == status
    return body


@pytest.mark.parametrize("auth", [None, (API_KEY, "wrong"), ("not-a-key", SECRET_KEY), (SECRET_KEY, SECRET_KEY),
                                  (API_KEY, "")])
@pytest.mark.parametrize("path", ["/v1/identities?user_id=user-David", "/v1/identities/1", "/v1/identities/1/timeline",
                                  "/v1/merges", "/v1/audit?amplitude_id=1", "/v1/stats",
                                  "/v1/identities", "/v1/identities/x/timeline?limit=0", "/v1/stats?as_of=-1"])
def test_every_query_needs_an_api_key_and_the_secret_key(merged: IdentityLedger, http: httpx.Client,
                                                         auth: tuple[str, str] | None, path: str) -> None:
    reply = http.get(path, auth=auth)
    assert (reply.status_code, reply.json()) == (401, UNAUTHORIZED)
    assert reply.headers["www-authenticate"] == 'Basic realm="ledger"'


def test_healthz_is_open(http: httpx.Client) -> None:
    reply = http.get("/healthz")
    assert (reply.status_code, reply.json()) == (200, {"code": 200, "status": "ok"})


def test_identities_by_user_id_device_id_and_amplitude_id(merged: IdentityLedger, query: httpx.Client) -> None:
    david = {"code": 200, "amplitude_id": 1, "user_id": "user-David", "device_ids": ["device-Y", "device-Z"],
             "merged_amplitude_ids": [2], "user_properties": {}}
    assert answer(query, "/v1/identities", user_id="user-David") == david
    assert answer(query, "/v1/identities", device_id="device-Z") == david
    assert answer(query, "/v1/identities/2") == david  # a merged amplitude ID answers with its person


BAD_AS_OF = "as_of: give a position (an integer) or an ISO-8601 time with a time zone"


@pytest.mark.parametrize(("path", "params", "status", "error"), [
    ("/v1/identities", {"user_id": "user-Nobody"}, 404, "Not found: no identity for this user_id"),
    ("/v1/identities", {"device_id": "device-Nobody"}, 404, "Not found: no identity for this device_id"),
    ("/v1/identities", {}, 400, BAD + "give exactly one of user_id, device_id"),
    ("/v1/identities", {"user_id": "user-David", "device_id": "device-Y"}, 400,
     BAD + "give exactly one of user_id, device_id"),
    ("/v1/identities/99", {}, 404, "Not found: no identity with amplitude_id 99"),
    ("/v1/identities/0", {}, 400, BAD_AMPLITUDE_ID),
    ("/v1/identities/x", {}, 400, BAD_AMPLITUDE_ID),
    ("/v1/identities/" + "9" * 5000, {}, 400, BAD_AMPLITUDE_ID),
    ("/v1/identities/99/timeline", {}, 404, "Not found: no identity with amplitude_id 99"),
    ("/v1/identities/1/timeline", {"limit": "0"}, 400, BAD_LIMIT),
    ("/v1/identities/1/timeline", {"limit": "1001"}, 400, BAD_LIMIT),
    ("/v1/identities/1/timeline", {"after": "-1"}, 400, bad_position("after")),
    ("/v1/stats", {"as_of": "1e3"}, 400, BAD_AS_OF),
    ("/v1/stats", {"as_of": "2999-01-01T00:00:00Z"}, 400, "as_of: 2999-01-01T00:00:00+00:00 is in the future"),
    ("/v1/stats", {"as_of": "2023-11-14T22:13:20"}, 400,
     "as_of: a time needs a time zone (e.g. 2026-12-07T10:00:00Z)"),
    ("/v1/stats", {"as_of": "2023-11-14T22:13:20\x00Z"}, 400, BAD_AS_OF),
    ("/v1/audit", {}, 400, BAD + "give exactly one of user_id, device_id, amplitude_id"),
    ("/v1/audit", {"amplitude_id": "one"}, 400, BAD_AMPLITUDE_ID),
    ("/v1/audit", {"user_id": "user-Nobody"}, 404, "Not found: no identity facts for this user_id"),
    ("/v1/merges", {"as_of": "\u0663"}, 400, BAD_AS_OF),  # an Arabic-Indic digit is not a position
])
def test_query_refusals(merged: IdentityLedger, query: httpx.Client, path: str, params: dict[str, str],
                        status: int, error: str) -> None:
    assert answer(query, path, status, **params) == {"code": status, "error": error}


def test_timeline_pages_follow_the_next_cursor(lg: IdentityLedger, query: httpx.Client) -> None:
    lg.ingest([event("device-A", event_type=f"step-{n}") for n in range(5)])
    lg.ingest([event("device-B")])
    seen, after, pages = [], 0, 0
    while after is not None:
        page = answer(query, "/v1/identities/1/timeline", limit=2, after=after)
        assert page["amplitude_id"] == 1 and len(page["events"]) <= 2
        seen += [e["event_type"] for e in page["events"]]
        after, pages = page["next"], pages + 1
    assert seen == [f"step-{n}" for n in range(5)] and pages == 3
    whole = answer(query, "/v1/identities/1/timeline")
    assert whole["next"] is None and len(whole["events"]) == 5


def test_timeline_of_a_merged_person_shows_both_amplitude_ids(merged: IdentityLedger, query: httpx.Client) -> None:
    events = answer(query, "/v1/identities/2/timeline")["events"]
    assert [(e["amplitude_id"], e["original_amplitude_id"]) for e in events] == [(1, 1), (1, 2), (1, 1), (1, 1)]


def test_merges_audit_and_stats(merged: IdentityLedger, query: httpx.Client) -> None:
    [merge] = answer(query, "/v1/merges")["merges"]
    assert list(merge) == ["amplitude_id", "merged_amplitude_id", "merge_event_time", "merge_server_time"]
    assert (merge["amplitude_id"], merge["merged_amplitude_id"]) == (2, 1)
    kinds = [entry["kind"] for entry in answer(query, "/v1/audit", user_id="user-David")["entries"]]
    assert "merged" in kinds and kinds[0] == "created"
    assert answer(query, "/v1/audit", device_id="device-Z")["entries"]
    person = answer(query, "/v1/audit", amplitude_id=1)["entries"]
    assert answer(query, "/v1/audit", amplitude_id=2)["entries"] == person
    assert answer(query, "/v1/stats") == {"code": 200, "position": merged.position, "events": 4, "users": 1,
                                          "identified_users": 1, "devices": 2, "merges": 1}


def test_as_of_a_time_answers_after_the_last_call_stored_by_then(lg: IdentityLedger, query: httpx.Client) -> None:
    first = lg.ingest([event("device-Y", "user-David"), event("device-Z")])
    before_merge = lg.position
    lg.ingest([event("device-Z", "user-David")])
    then = dt.datetime.fromtimestamp(first.server_time / 1000, dt.UTC)
    assert answer(query, "/v1/stats", as_of=then.isoformat())["position"] == before_merge
    assert answer(query, "/v1/identities", device_id="device-Z", as_of=then.isoformat())["amplitude_id"] == 2
    earlier = (then - dt.timedelta(milliseconds=1)).isoformat()
    assert answer(query, "/v1/stats", as_of=earlier)["position"] == 0
    assert answer(query, "/v1/stats", 400, as_of=str(lg.position + 1))["error"] == \
        f"as_of: position {lg.position + 1} is past the end of the ledger ({lg.position})"
    assert answer(query, "/v1/stats", 400, as_of="9" * 30)["code"] == 400


def test_as_of_answers_from_the_ledger_as_it_stood(lg: IdentityLedger, query: httpx.Client) -> None:
    lg.ingest([event("device-Y", "user-David"), event("device-Z")])
    before_merge = lg.position
    lg.ingest([event("device-Z", "user-David")])
    assert answer(query, "/v1/identities", device_id="device-Z")["amplitude_id"] == 1
    assert answer(query, "/v1/identities", device_id="device-Z", as_of=before_merge)["amplitude_id"] == 2
    assert answer(query, "/v1/merges", as_of=before_merge)["merges"] == []
    assert answer(query, "/v1/stats", as_of=before_merge)["position"] == before_merge
    assert len(answer(query, "/v1/identities/1/timeline", as_of=before_merge)["events"]) == 1
    assert answer(query, "/v1/audit", 404, user_id="user-David", as_of=0)["code"] == 404
    assert answer(query, "/v1/identities/1", 404, as_of=0)["error"] == "Not found: no identity with amplitude_id 1"


@pytest.mark.parametrize(("api_keys", "secret_key", "message"), [
    ([], "secret", "no API key configured"),
    (["", " "], "secret", "no API key configured"),
    (["key-1"], "", "no secret key configured"),
    (["key-1", "key-2"], "key-2", "the secret key must differ from every API key"),
])
def test_the_server_refuses_to_start_open(tmp_path: Any, lg: IdentityLedger, api_keys: list[str], secret_key: str,
                                          message: str) -> None:
    with pytest.raises(ServerConfigError, match=message):
        create_app(lg, api_keys, secret_key)
    database = tmp_path / "never.db"
    with pytest.raises(ServerConfigError, match=message):
        serve(db_url=f"sqlite:///{database}", host="127.0.0.1", port=0, api_keys=api_keys, secret_key=secret_key)
    assert not database.exists()


def test_several_api_keys_each_upload_and_query(lg: IdentityLedger) -> None:
    with running_app(create_app(lg, ["key-one", "key-two"], SECRET_KEY)) as base_url:
        for key in ("key-one", "key-two"):
            reply = httpx.post(f"{base_url}/2/httpapi", json={"api_key": key, "events": [event(f"device-{key}")]})
            assert reply.json()["events_ingested"] == 1
            with query_client(base_url, (key, SECRET_KEY)) as client:
                assert answer(client, "/v1/stats")["events"] == (1 if key == "key-one" else 2)


def test_explain_answers_why_an_event_belongs_to_its_person(merged: IdentityLedger, query: httpx.Client) -> None:
    first = merged.events()[1]  # device-Z's anonymous event: arrived as 2, counts for 1 since the merge
    body = answer(query, f"/v1/explain/{first.position}")
    assert (body["arrived_as"], body["now"]) == (2, 1)
    assert [entry["kind"] for entry in body["because"]] == ["created", "linked", "merged"]


@pytest.mark.parametrize(("position", "status", "error"), [
    ("x", 400, bad_position("position").replace("0 to", "1 to")),
    ("-1", 400, bad_position("position").replace("0 to", "1 to")),
    ("0", 400, bad_position("position").replace("0 to", "1 to")),
    ("9" * 30, 400, bad_position("position").replace("0 to", "1 to")),
    ("1%00", 400, bad_position("position").replace("0 to", "1 to")),
    ("1", 404, "Not found: no tracked event at position 1"),
    ("999999", 404, "Not found: no tracked event at position 999999"),
])
def test_explain_refusals(merged: IdentityLedger, query: httpx.Client, position: str, status: int,
                          error: str) -> None:
    assert answer(query, f"/v1/explain/{position}", status) == {"code": status, "error": error}
