"""`POST /groupidentify`, `GET`/`POST /usermap` and `GET /v1/groups/...` over raw HTTP, hostile input included."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from ledger import IdentityLedger
from tests.domain.test_validation import snapshot
from tests.helpers import event
from tests.server_helpers import API_KEY

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form(**fields: Any) -> bytes:
    return urlencode({name: value if isinstance(value, str) else json.dumps(value)
                      for name, value in fields.items()}).encode()


def unchanged_after(lg: IdentityLedger, send: Any) -> httpx.Response:
    """Send a refused request: it must be a 400/413 JSON reply naming the problem, storing nothing."""
    before = snapshot(lg)
    reply = send()
    assert reply.status_code in (400, 413), reply.text
    assert list(reply.json())[:2] == ["code", "error"] and reply.json()["code"] == reply.status_code
    assert snapshot(lg) == before
    return reply


def test_group_identify_by_form_then_read_the_group(http: httpx.Client, query: httpx.Client,
                                                    lg: IdentityLedger) -> None:
    joined = lg.ingest([event("dev-ann", "user-ann", groups={"org id": "1234"})]).position
    identification = [{"group_type": "org id", "group_value": "1234",
                       "group_properties": {"org plan": "Enterprise", "$add": {"seats": 3}}}]
    body = form(api_key=API_KEY, identification=identification)
    reply = http.post("/groupidentify", content=body, headers=FORM)
    assert reply.status_code == 200 and reply.json()["events_ingested"] == 1
    assert reply.json()["payload_size_bytes"] == len(body)
    found = query.get("/v1/groups/org id/1234")
    assert found.status_code == 200
    ann = lg.resolve(user_id="user-ann")
    assert found.json()["properties"] == {"org plan": "Enterprise", "seats": 3}
    assert found.json()["amplitude_ids"] == [ann.amplitude_id]
    assert found.json()["members"][0]["amplitude_id"] == ann.amplitude_id
    assert query.get("/v1/identities", params={"user_id": "user-ann"}).json()["groups"] == {"org id": ["1234"]}
    assert query.get("/v1/groups/org id/1234", params={"as_of": joined}).json()["properties"] == {}
    assert query.get("/v1/groups/org id/9999").status_code == 404
    assert http.get("/v1/groups/org id/1234").status_code == 401


def test_group_identify_in_the_query_string_as_amplitudes_example(http: httpx.Client, lg: IdentityLedger) -> None:
    identification = {"group_properties": {"org csm": "Lucas"}, "group_value": "1234", "group_type": "org id"}
    reply = http.post("/groupidentify?" + form(api_key=API_KEY, identification=identification).decode())
    assert reply.status_code == 200
    assert lg.group("org id", "1234").properties == {"org csm": "Lucas"}


def test_usermap_maps_and_unmaps_by_get_and_post(http: httpx.Client, query: httpx.Client,
                                                 lg: IdentityLedger) -> None:
    lg.ingest([event("dev-a", "user-aaa"), event("dev-b", "user-bbb")])
    reply = http.get("/usermap", params={"api_key": API_KEY,
                                          "mapping": json.dumps([{"user_id": "user-aaa", "global_user_id": "user-bbb"}])})
    assert reply.json() == {"code": 200, "mapped": 1, "unmapped": 0, "unchanged": 0}
    b = query.get("/v1/identities", params={"user_id": "user-bbb"}).json()
    assert b["mapped_user_ids"] == ["user-aaa"]
    assert len(query.get(f"/v1/identities/{b['amplitude_id']}/timeline").json()["events"]) == 2
    reply = http.post("/usermap", content=form(api_key=API_KEY, mapping={"user_id": "user-aaa", "unmap": True}),
                      headers=FORM)
    assert reply.json() == {"code": 200, "mapped": 0, "unmapped": 1, "unchanged": 0}
    assert [(m.unmap, m.requester) for m in lg.mappings()] == [(False, f"api_key:{API_KEY}"),
                                                                 (True, f"api_key:{API_KEY}")]
    audit = query.get("/v1/mappings", params={"user_id": "user-bbb"}).json()["mappings"]
    assert [(m["user_id"], m["global_user_id"], m["unmap"]) for m in audit] == [
        ("user-aaa", "user-bbb", False), ("user-aaa", "user-bbb", True)]
    assert query.get("/v1/mappings", params={"user_id": "nobody"}).json()["mappings"] == []
    assert query.get("/v1/mappings", params={"user_id": "a\x00"}).status_code == 400


DEEP: Any = "x"
for _ in range(45):  # past the 40 levels a stored value may nest
    DEEP = {"d": DEEP}
IDENTIFICATION = {"group_type": "org", "group_value": "acme", "group_properties": {"a": 1}}


@pytest.mark.parametrize("fields, status, problem", [
    ({"identification": [IDENTIFICATION]}, 400, {"missing_field": "api_key"}),
    ({"api_key": "nope", "identification": [IDENTIFICATION]}, 400, {"error": "Invalid API key: nope"}),
    ({"api_key": API_KEY}, 400, {"missing_field": "identification"}),
    ({"api_key": API_KEY, "identification": []}, 400, {"missing_field": "identification"}),
    ({"api_key": API_KEY, "identification": "{not json"}, 400, {"error": "Invalid JSON request body"}),
    ({"api_key": API_KEY, "identification": "[" * 200 + "]" * 200}, 400, {"error": "Invalid JSON request body"}),
    ({"api_key": API_KEY, "identification": [IDENTIFICATION] * 1025}, 413, {"error": "Payload too large"}),
    ({"api_key": API_KEY, "identification": [{**IDENTIFICATION, "group_value": "a\u0000"}]}, 400,
     {"identifications_with_invalid_fields": {"group_value": [0]}}),
    ({"api_key": API_KEY, "identification": [{**IDENTIFICATION, "group_properties": {"n": 10**40}}]}, 400,
     {"identifications_with_invalid_fields": {"group_properties": [0]}}),
    ({"api_key": API_KEY, "identification": [{**IDENTIFICATION, "group_properties": {"n": 1e400}}]}, 400, {}),
    ({"api_key": API_KEY, "identification": [{**IDENTIFICATION, "group_properties": {"a": DEEP}}]}, 400,
     {"identifications_with_invalid_fields": {"group_properties": [0]}}),
    ({"api_key": API_KEY, "identification": [IDENTIFICATION, {"group_type": "org"}]}, 400,
     {"identifications_with_missing_fields": {"group_value": [1]}}),
])
def test_hostile_group_identify_requests_are_400s_naming_the_problem(
        http: httpx.Client, lg: IdentityLedger, fields: dict[str, Any], status: int, problem: dict[str, Any]) -> None:
    reply = unchanged_after(lg, lambda: http.post("/groupidentify", content=form(**fields), headers=FORM))
    assert reply.status_code == status and problem.items() <= reply.json().items()


MAPPING = {"user_id": "user-aaa", "global_user_id": "user-bbb"}


@pytest.mark.parametrize("fields, status, problem", [
    ({"mapping": [MAPPING]}, 400, {"missing_field": "api_key"}),
    ({"api_key": API_KEY}, 400, {"missing_field": "mapping"}),
    ({"api_key": API_KEY, "mapping": "nope"}, 400, {"error": "Invalid JSON request body"}),
    ({"api_key": API_KEY, "mapping": [MAPPING] * 2001}, 413, {"error": "Payload too large"}),
    ({"api_key": API_KEY, "mapping": [MAPPING, {"user_id": "user-\u0000"}]}, 400,
     {"mappings_with_invalid_fields": {"user_id": [1]}}),
    ({"api_key": API_KEY, "mapping": [{"user_id": 10**40, "global_user_id": "b"}]}, 400, {}),
    ({"api_key": API_KEY, "mapping": [MAPPING, {"user_id": "user-bbb", "global_user_id": "user-aaa"}]}, 400,
     {"mappings_with_invalid_fields": {"user_id": [1]}}),
    ({"api_key": API_KEY, "mapping": "{" * 5000}, 400, {"error": "Invalid JSON request body"}),
])
def test_hostile_usermap_requests_are_400s_naming_the_problem(
        http: httpx.Client, lg: IdentityLedger, fields: dict[str, Any], status: int, problem: dict[str, Any]) -> None:
    reply = unchanged_after(lg, lambda: http.post("/usermap", content=form(**fields), headers=FORM))
    assert reply.status_code == status and problem.items() <= reply.json().items()


def test_oversized_bodies_and_bad_forms_are_refused(http: httpx.Client, lg: IdentityLedger) -> None:
    huge = form(api_key=API_KEY, mapping=[{"user_id": "u" * 1000, "global_user_id": "g" * 1000}] * 600)
    assert unchanged_after(lg, lambda: http.post("/usermap", content=huge, headers=FORM)).status_code == 413
    bad = b"api_key=" + API_KEY.encode() + b"&mapping=%ff%fe"
    unchanged_after(lg, lambda: http.post("/usermap", content=bad, headers=FORM))
    nul_key = form(api_key="k\u0000", mapping=[MAPPING])
    unchanged_after(lg, lambda: http.post("/usermap", content=nul_key, headers=FORM))
