"""`POST /v1/corrections` and `GET /v1/corrections` (docs/corrections.md): the secret key, the answer,
and hostile bodies (NUL, huge, deep, wrong types, unknown user IDs): a 4xx naming the problem, never a 500,
and nothing stored."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import pytest

from ledger import IdentityLedger
from tests.domain.test_validation import snapshot
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY

UNAUTHORIZED = {"code": 401, "error": "Unauthorized"}


@pytest.fixture
def accident(lg: IdentityLedger) -> IdentityLedger:
    """Three devices sign in as the placeholder user ID "None" and become one person."""
    for device_id in ("device-1", "device-2", "device-3"):
        lg.ingest([event(device_id), event(device_id, "None")], min_id_length=4)
    return lg


def test_a_correction_is_made_and_listed(accident: IdentityLedger, query: httpx.Client) -> None:
    reply = query.post("/v1/corrections", json={"user_id": "None", "reason": "placeholder",
                                                "requester": "ops@example.com"})
    assert reply.status_code == 200, reply.text
    correction = reply.json()["correction"]
    assert (correction["user_id"], correction["requester"], correction["reason"]) == (
        "None", "ops@example.com", "placeholder")
    assert correction["changes"]["people_after"] == 3
    assert query.get("/v1/identities", params={"user_id": "None"}).status_code == 404
    listed = query.get("/v1/corrections").json()["corrections"]
    assert listed == [correction]
    assert query.get("/v1/corrections", params={"as_of": correction["position"] - 1}).json()["corrections"] == []
    merges = query.get("/v1/merges").json()["merges"]
    assert merges and all(merge["undone_server_time"] == correction["server_time"] for merge in merges)


def test_the_requester_defaults_to_the_api_key(accident: IdentityLedger, query: httpx.Client) -> None:
    reply = query.post("/v1/corrections", json={"user_id": "None", "reason": "placeholder"})
    assert reply.json()["correction"]["requester"] == f"api_key {API_KEY}"


@pytest.mark.parametrize("auth", [None, (API_KEY, "wrong"), ("not-a-key", SECRET_KEY), (API_KEY, "")])
def test_a_correction_needs_the_secret_key(accident: IdentityLedger, http: httpx.Client,
                                           auth: tuple[str, str] | None) -> None:
    before = snapshot(accident)
    reply = http.post("/v1/corrections", json={"user_id": "None", "reason": "x"}, auth=auth)
    assert (reply.status_code, reply.json()) == (401, UNAUTHORIZED)
    assert snapshot(accident) == before


DEEP = "[" * 20_000 + "]" * 20_000  # under the size limit: refused for its depth


@pytest.mark.parametrize("body, status, says", [
    ({"user_id": "None\u0000", "reason": "x"}, 400, "user_id"),
    ({"user_id": "None", "reason": "x\u0000"}, 400, "reason"),
    ({"user_id": "None", "reason": "x", "requester": "\u0000"}, 400, "requester"),
    ({"user_id": "", "reason": "x"}, 400, "user_id"),
    ({"user_id": "None", "reason": "   "}, 400, "reason"),
    ({"user_id": "u" * 5000, "reason": "x"}, 400, "user_id"),
    ({"user_id": 10**40, "reason": "x"}, 400, "user_id"),
    ({"user_id": ["None"], "reason": "x"}, 400, "user_id"),
    ({"user_id": "None"}, 400, "reason"),
    ({"user_id": "None", "reason": "x", "extra": 1}, 400, "extra"),
    ({"user_id": "never-sent", "reason": "x"}, 404, "never-sent"),
    ({"user_id": "None", "reason": "r" * 70_000}, 413, "Payload too large"),
    ([], 400, "Invalid request body"),
])
def test_hostile_bodies_are_refused_and_store_nothing(accident: IdentityLedger, query: httpx.Client, body: Any,
                                                      status: int, says: str) -> None:
    before = snapshot(accident)
    reply = query.post("/v1/corrections", json=body)
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == status and says in reply.text
    assert snapshot(accident) == before


@pytest.mark.parametrize("content, headers, status", [
    (DEEP.encode(), {"Content-Type": "application/json"}, 400),
    (b"{not json", {"Content-Type": "application/json"}, 400),
    (b'{"user_id": "None", "reason": "x"}', {"Content-Type": "text/plain"}, 415),
    (gzip.compress(b" " * 10_000_000), {"Content-Type": "application/json", "Content-Encoding": "gzip"}, 413),
    (b'{"user_id": "None", "reason": "\xff"}', {"Content-Type": "application/json"}, 400),
])
def test_malformed_bodies_are_refused(accident: IdentityLedger, query: httpx.Client, content: bytes,
                                      headers: dict[str, str], status: int) -> None:
    before = snapshot(accident)
    reply = query.post("/v1/corrections", content=content, headers=headers)
    assert (reply.status_code, reply.json()["code"]) == (status, status), reply.text
    assert snapshot(accident) == before
    assert query.get("/v1/stats").status_code == 200  # the ledger still answers


def test_a_second_retraction_is_a_conflict(accident: IdentityLedger, query: httpx.Client) -> None:
    assert query.post("/v1/corrections", json={"user_id": "None", "reason": "x"}).status_code == 200
    reply = query.post("/v1/corrections", json={"user_id": "None", "reason": "x"})
    assert (reply.status_code, reply.json()["error"]) == (409, "User ID 'None' is already retracted")
