"""Fuzzing every endpoint: malformed bodies, encodings, sizes and values never get a 500 or a hang,
and afterwards the ledger still answers and its read side equals a rebuild from the log.
"""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import IdentityLedger
from ledger.server.app import create_app
from projections import tables as t
from tests.helpers import connected
from tests.server_helpers import API_KEY, SECRET_KEY, basic, running_app

#: Bounded so that the whole suite stays quick; raise it locally to fuzz harder.
EXAMPLES = 150

NASTY_TEXT = ["", " ", "\x00", "a\x00b", "x" * 1025, "null", "0", "-1", "anonymous", "é☃😀", "$set", "\\u0000",
              "'; DROP TABLE ledger_timeline; --", "2024-01-01T00:00:00Z", "9" * 30]
NASTY_NUMBERS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 2**64, 10**30, 1e308, -1e308, 1.5, -0.0]
ids = st.sampled_from(["device-one", "device-two", "device-three", "user-alice", "user-bobby"])
text = st.one_of(st.text(max_size=20), st.sampled_from(NASTY_TEXT))
scalars = st.one_of(st.none(), st.booleans(), text, st.sampled_from(NASTY_NUMBERS),
                    st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(text, inner, max_size=4)), max_leaves=12)
operations = st.dictionaries(
    st.sampled_from(["$set", "$setOnce", "$add", "$append", "$prepend", "$preInsert", "$postInsert", "$remove",
                     "$unset", "$clearAll", "$bogus", "plain"]),
    st.one_of(st.dictionaries(st.sampled_from(["n", "plan", "tags", "\x00"]), json_values, max_size=3), json_values),
    max_size=3,
)
events = st.fixed_dictionaries({}, optional={
    "event_type": st.one_of(st.sampled_from(["view", "$identify", "$groupidentify"]), scalars),
    "user_id": st.one_of(ids, scalars),
    "device_id": st.one_of(ids, scalars),
    "insert_id": st.one_of(st.sampled_from(["i-1", "i-2"]), scalars),
    "time": st.one_of(st.integers(min_value=0, max_value=2**45), scalars),
    "event_properties": json_values,
    "user_properties": st.one_of(operations, json_values),
    "groups": st.one_of(st.dictionaries(text, st.one_of(text, st.lists(text, max_size=3)), max_size=3), json_values),
    "group_properties": st.one_of(operations, json_values),
})
identifications = st.fixed_dictionaries({}, optional={
    "group_type": st.one_of(st.sampled_from(["org", "team"]), scalars),
    "group_value": st.one_of(st.sampled_from(["acme", "a/b"]), scalars),
    "group_properties": st.one_of(operations, json_values),
})
mappings = st.fixed_dictionaries({}, optional={
    "user_id": st.one_of(ids, scalars), "global_user_id": st.one_of(ids, scalars), "unmap": scalars,
})
segment_messages = st.fixed_dictionaries({"type": st.one_of(
    st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "other"]), scalars)}, optional={
    "userId": st.one_of(ids, scalars), "anonymousId": st.one_of(ids, scalars), "messageId": scalars,
    "timestamp": st.one_of(st.sampled_from(["2024-01-01T00:00:00Z", "2024-13-45", "yesterday"]), scalars),
    "event": text, "name": text, "properties": json_values, "traits": json_values, "groupId": scalars,
})


def _json(value: Any) -> bytes:
    try:
        return msgspec.json.encode(value)
    except (TypeError, OverflowError, msgspec.EncodeError):  # e.g. ints past 64 bits: write them as text
        return json.dumps(value).encode()


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """One HTTP request to any endpoint, well-formed or not."""
    kind = draw(st.sampled_from(["upload", "upload", "identify", "segment", "query", "junk", "groupidentify",
                                 "usermap"]))
    headers = {"Content-Type": draw(st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                     "text/plain", "application/x-www-form-urlencoded"]))}
    if kind == "upload":
        body: dict[str, Any] = {"api_key": draw(st.one_of(st.just(API_KEY), scalars)),
                                "events": draw(st.one_of(st.lists(st.one_of(events, json_values), max_size=6),
                                                         json_values))}
        if draw(st.booleans()):
            body["options"] = draw(st.one_of(st.fixed_dictionaries({"min_id_length": scalars}), json_values))
        path, content = draw(st.sampled_from(["/2/httpapi", "/batch"])), _json(body)
    elif kind == "identify":
        identification = draw(st.one_of(st.lists(events, max_size=4), events, json_values))
        form = {"api_key": draw(st.one_of(st.just(API_KEY), text)),
                "identification": _json(identification).decode()}
        path, content = "/identify", urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif kind in ("groupidentify", "usermap"):
        name, items = ("identification", identifications) if kind == "groupidentify" else ("mapping", mappings)
        form = {"api_key": draw(st.one_of(st.just(API_KEY), text)),
                name: _json(draw(st.one_of(st.lists(items, max_size=4), items, json_values))).decode()}
        path, content = f"/{kind}", urlencode(form).encode()
        if draw(st.booleans()):  # Amplitude's own examples send the fields in the query string
            path, content = f"{path}?{content.decode()}", b""
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif kind == "segment":
        path = "/v1/batch"
        content = _json({"batch": draw(st.one_of(st.lists(segment_messages, max_size=4), json_values))})
        headers.update(basic(API_KEY, ""))
    elif kind == "query":
        path = draw(st.sampled_from(["/v1/identities", "/v1/identities/1", "/v1/identities/1/timeline",
                                     "/v1/identities/99999999999999999999", "/v1/merges", "/v1/audit", "/v1/stats",
                                     "/healthz", "/v1/identities/-1/timeline", "/v1/groups/org/acme",
                                     "/v1/groups/org/a/b", "/v1/mappings"]))
        params = draw(st.dictionaries(st.sampled_from(["user_id", "device_id", "amplitude_id", "after", "limit",
                                                       "as_of"]), st.one_of(ids, st.sampled_from(NASTY_TEXT), text),
                                     max_size=2))
        return {"method": "GET", "path": f"{path}?{urlencode(params)}", "headers": basic(API_KEY, SECRET_KEY),
                "content": None}
    else:
        path = draw(st.sampled_from(["/2/httpapi", "/batch", "/identify", "/v1/batch", "/nowhere"]))
        content = draw(st.binary(max_size=300))
        headers.update(basic(API_KEY, ""))
    if draw(st.integers(0, 4)) == 0:
        headers["Content-Encoding"] = draw(st.sampled_from(["gzip", "deflate", "br"]))
        if headers["Content-Encoding"] == "gzip" and draw(st.booleans()):
            content = gzip.compress(content)
    return {"method": "POST", "path": path, "headers": headers, "content": content}


def read_side(lg: IdentityLedger) -> dict[str, list[Any]]:
    with connected(lg.url) as connection:
        return {table.name: sorted(map(tuple, connection.execute(sa.select(table))), key=repr)
                for table in t.PROJECTION_TABLES}


def test_no_request_breaks_the_server_or_the_ledger(lg: IdentityLedger) -> None:
    """A real server (uvicorn); the client's time-out makes a hang fail the test."""
    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as base_url, \
            httpx.Client(base_url=base_url, timeout=10) as client:

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(request=requests())
        def one_request(request: dict[str, Any]) -> None:
            reply = client.request(request["method"], request["path"], headers=request["headers"],
                                   content=request["content"])
            assert reply.status_code < 500, (reply.status_code, reply.text)
            assert reply.json()["code"] == reply.status_code

        one_request()
        assert client.get("/healthz").json() == {"code": 200, "status": "ok"}
    live = read_side(lg)
    lg.rebuild()
    assert read_side(lg) == live
