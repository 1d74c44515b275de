"""Amplitude's User Privacy API (v1) on the server: requests, listing, withdrawal, auth and hostile input."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest

from ledger import IdentityLedger
from tests.helpers import Clock, event
from tests.server_helpers import API_KEY, SECRET_KEY

PATH = "/api/2/deletions/users"
UNAUTHORIZED = {"code": 401, "error": "Unauthorized"}


@pytest.fixture
def people(lg: IdentityLedger) -> IdentityLedger:
    lg.ingest([event("device-alice", "alice@example.org"), event("device-bob", "bob@example.org")])
    return lg


def refused(reply: httpx.Response, *words: str) -> dict[str, Any]:
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["code"] == 400 and all(word in body["error"] for word in words), body
    return body


def test_a_json_request_is_scheduled_listed_and_withdrawn(query: httpx.Client, people: IdentityLedger,
                                                          clock: Clock) -> None:
    reply = query.post(PATH, json={"user_ids": ["alice@example.org"], "amplitude_ids": [2], "requester": "dpo"})
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"day": "2023-11-15", "status": "staging", "amplitude_ids": [  # amplitude IDs first
        {"amplitude_id": 2, "requester": "dpo", "requested_on_day": "2023-11-14"},
        {"amplitude_id": 1, "requester": "dpo", "requested_on_day": "2023-11-14"}]}
    listed = query.get(PATH, params={"start_day": "2023-11-01", "end_day": "2023-11-30"})
    assert listed.status_code == 200 and listed.json() == [reply.json()]
    withdrawn = query.delete(f"{PATH}/2/2023-11-15")
    assert withdrawn.status_code == 200 and [entry["amplitude_id"] for entry in withdrawn.json()["amplitude_ids"]] == [1]
    refused(query.delete(f"{PATH}/2/2023-11-15"), "not waiting")
    assert people.resolve(user_id="alice@example.org") is not None  # not run yet: its day has not come
    clock.now += 24 * 3600 * 1000
    assert [run.amplitude_ids for run in people.run_deletions()] == [[1]]
    assert people.resolve(user_id="alice@example.org") is None
    assert query.get(PATH, params={"start_day": "2023-11-15", "end_day": "2023-11-15"}).json()[0]["status"] == "done"
    gone = query.get("/v1/identities/1")
    assert gone.status_code == 404 and "forgotten" in gone.json()["error"]


def test_a_form_encoded_request_repeats_its_fields(query: httpx.Client, people: IdentityLedger) -> None:
    reply = query.post(PATH, content="amplitude_ids=1&amplitude_ids=2&requester=dpo",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 200, reply.text
    assert [entry["amplitude_id"] for entry in reply.json()["amplitude_ids"]] == [1, 2]
    reply = query.post(PATH, content="user_ids=nobody&user_ids=bob%40example.org&requester=dpo&ignore_invalid_id=true",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert [entry["amplitude_id"] for entry in reply.json()["amplitude_ids"]] == [2]


def test_unknown_ids_are_named_unless_ignored(query: httpx.Client, people: IdentityLedger) -> None:
    body = refused(query.post(PATH, json={"user_ids": ["nobody", "alice@example.org"], "amplitude_ids": [77],
                                          "requester": "dpo"}), "Unknown IDs")
    assert (body["invalid_user_ids"], body["invalid_amplitude_ids"]) == (["nobody"], [77])
    ok = query.post(PATH, json={"user_ids": ["nobody"], "amplitude_ids": [1], "requester": "dpo",
                                "ignore_invalid_ids": True})
    assert ok.status_code == 200 and [entry["amplitude_id"] for entry in ok.json()["amplitude_ids"]] == [1]


@pytest.mark.parametrize("method, path", [("POST", PATH), ("GET", PATH + "?start_day=2023-11-01&end_day=2023-11-02"),
                                          ("DELETE", PATH + "/1/2023-11-15")])
@pytest.mark.parametrize("auth", [None, (API_KEY, "wrong"), ("not-a-key", SECRET_KEY), (API_KEY, "")])
def test_every_route_needs_the_secret_key(url: str, people: IdentityLedger, method: str, path: str,
                                          auth: tuple[str, str] | None) -> None:
    reply = httpx.request(method, url + path, auth=auth, json={"amplitude_ids": [1], "requester": "dpo"})
    assert (reply.status_code, reply.json()) == (401, UNAUTHORIZED)
    assert people.resolve(user_id="alice@example.org") is not None


@pytest.mark.parametrize("body, words", [
    ({"amplitude_ids": list(range(1, 102)), "requester": "dpo"}, ["at most 100"]),
    ({"amplitude_ids": [1] * 60, "user_ids": ["u"] * 41, "requester": "dpo"}, ["at most 100"]),
    ({"amplitude_ids": [10**30], "requester": "dpo"}, []),
    ({"amplitude_ids": [-1], "requester": "dpo"}, ["whole numbers"]),
    ({"amplitude_ids": ["1"], "requester": "dpo"}, ["whole numbers"]),
    ({"amplitude_ids": [1.5], "requester": "dpo"}, ["whole numbers"]),
    ({"user_ids": ["a\u0000b"], "requester": "dpo"}, ["without NUL"]),
    ({"user_ids": [{"deep": [[[]]]}], "requester": "dpo"}, ["user_ids"]),
    ({"amplitude_ids": [1], "requester": "a\u0000"}, ["requester"]),
    ({"amplitude_ids": [1]}, ["requester"]),
    ({"amplitude_ids": [1], "requester": 5}, ["requester"]),
    ({"requester": "dpo"}, ["give amplitude_ids or user_ids"]),
    ({"amplitude_ids": 1, "requester": "dpo"}, ["Invalid request body"]),
    ([], ["Invalid request body"]),
])
def test_hostile_json_bodies_are_400s_that_store_nothing(query: httpx.Client, people: IdentityLedger,
                                                         body: Any, words: list[str]) -> None:
    position = people.position
    refused(query.post(PATH, json=body), *words)
    assert people.position == position


@pytest.mark.parametrize("content", [b"[" * 5000 + b"]" * 5000, b'{"amplitude_ids": [1], "requester": "dpo"',
                                     b"\xff\xfe", b'{"amplitude_ids": [' + b"1," * 200_000 + b"1]}"])
def test_malformed_deep_or_huge_bodies_are_refused(query: httpx.Client, people: IdentityLedger,
                                                   content: bytes) -> None:
    position = people.position
    reply = query.post(PATH, content=content, headers={"Content-Type": "application/json"})
    assert reply.status_code in (400, 413) and reply.json()["code"] == reply.status_code
    assert people.position == position


@pytest.mark.parametrize("content", ["amplitude_ids=x&requester=dpo", "amplitude_ids=-1&requester=dpo",
                                     "amplitude_ids=99999999999999999999&requester=dpo",
                                     "&".join(["amplitude_ids=1"] * 120) + "&requester=dpo",
                                     "user_ids=a%00b&requester=dpo", "amplitude_ids=1&requester=%00"])
def test_hostile_form_bodies_are_400s(query: httpx.Client, people: IdentityLedger, content: str) -> None:
    reply = query.post(PATH, content=content, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status_code == 400, reply.text


def test_gzip_bodies_and_wrong_media_types(query: httpx.Client, people: IdentityLedger) -> None:
    body = gzip.compress(b'{"amplitude_ids": [1], "requester": "dpo"}')
    reply = query.post(PATH, content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    assert query.post(PATH, content=b"{}", headers={"Content-Type": "text/csv"}).status_code == 415


@pytest.mark.parametrize("params, words", [
    ({}, "start_day"), ({"start_day": "2023-11-01"}, "end_day"),
    ({"start_day": "2023-13-01", "end_day": "2023-12-01"}, "start_day"),
    ({"start_day": "2023-11-01\x00", "end_day": "2023-12-01"}, "start_day"),
    ({"start_day": "20231101", "end_day": "2023-12-01"}, "start_day"),
    ({"start_day": "2023-11-02", "end_day": "2023-11-01"}, "end_day must be"),
    ({"start_day": "2023-01-01", "end_day": "2023-12-01"}, "end_day must be"),
    ({"start_day": "0001-01-01", "end_day": "9999-12-31"}, "end_day must be"),
])
def test_bad_listing_days_are_400s(query: httpx.Client, people: IdentityLedger, params: dict[str, str],
                                   words: str) -> None:
    refused(query.get(PATH, params=params), words)


@pytest.mark.parametrize("path", ["/0/2023-11-15", "/1/0001-01-01", "/1/9999-12-31", "/99999999999999999999/2023-11-15",
                                  "/1/2023-02-30", "/1/tomorrow", "/x/2023-11-15"])
def test_bad_withdrawals_are_400s(query: httpx.Client, people: IdentityLedger, path: str) -> None:
    refused(query.delete(PATH + path))
