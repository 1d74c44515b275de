"""The HTTP API described as an OpenAPI 3.1 document, served at `GET /openapi.json`.

The schemas of what the server reads and answers are generated from the msgspec Structs the
code uses, so they cannot drift from it; the paths, parameters and statuses are written here.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledger.domain.calls import EventIn
from ledger.errors import BAD_EVENT_KEYS
from ledger.history.changes import Change
from ledger.server import changes_api, segment
from ledger.server.corrections_api import CorrectionIn
from projections.models import AuditEntry, Correction, Group, Identity, MappingEntry, Merge, TimelineEvent

_REF = "#/components/schemas/{name}"
JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _reply(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _answer(**fields: Any) -> dict[str, Any]:
    """A 200 reply: `code` and the named fields."""
    return {"type": "object", "required": ["code", *fields],
            "properties": {"code": {"const": 200}, **fields}}


_ERROR = _ref("Error")
_REFUSALS = {
    "400": _reply("Refused: nothing was stored; the body says why (bad events are named by index)", _ERROR),
    "413": _reply("Payload too large (bytes, or more than 2000 events)", _ERROR),
    "415": _reply("Wrong Content-Type or Content-Encoding", _ERROR),
    "503": _reply("Other writers kept winning the race for the same IDs; retry (Retry-After: 1)", _ERROR),
}
_QUERY_REFUSALS = {
    "400": _reply("A bad query parameter", _ERROR),
    "401": _reply("Missing or wrong credentials (HTTP Basic api_key:secret_key)", _ERROR),
    "404": _reply("No such identity, or no audit entries", _ERROR),
}
_NO_WRITE_KEY = {"401": _reply("No known write key (HTTP Basic user name or `writeKey`)", _ERROR)}
_INGESTED = _reply("Stored (duplicates are answered 200 and not counted)", _answer(
    events_ingested={"type": "integer"}, payload_size_bytes={"type": "integer"},
    server_upload_time={"type": "integer", "description": "milliseconds since the epoch"}))
_STATS = _answer(**{name: {"type": "integer"} for name in
                    ("position", "events", "users", "identified_users", "devices", "merges")})


def _param(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}


_AS_OF = _param("as_of", "query", {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "format": "date-time"}]},
                "answer as the ledger stood at this position, or at this time (ISO-8601 with a time zone: after the "
                "last call stored by then); past the end or in the future is a 400")
_AMPLITUDE_ID = _param("amplitude_id", "path", {"type": "integer", "minimum": 1}, "a live or merged amplitude ID")
_ID_PARAMS = [_param(name, "query", {"type": "string"}, f"exactly one of user_id, device_id: the {name}")
              for name in ("user_id", "device_id")]


def _upload(summary: str, body: dict[str, Any], media_type: str = JSON) -> dict[str, Any]:
    return {"post": {"summary": summary, "requestBody": {"required": True, "content": {media_type: {"schema": body}}},
                     "responses": {"200": _INGESTED, **_REFUSALS}}}


def _segment(summary: str, body: dict[str, Any]) -> dict[str, Any]:
    """A Segment upload: the write key comes as the HTTP Basic user name or as `writeKey`, else a 401."""
    post = _upload(f"{summary} (write key as HTTP Basic user name or `writeKey`)", body)["post"]
    return {"post": {**post, "security": [{"basic": []}, {}], "responses": {
        **post["responses"], "401": _reply("No write key, or an unknown one", _ERROR)}}}


def _query(summary: str, answer: dict[str, Any], parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": [{"basic": []}], "parameters": [*parameters, _AS_OF],
                    "responses": {"200": _reply("The answer", answer), **_QUERY_REFUSALS}}}


_JOB = {"type": "object", "required": ["day", "status", "amplitude_ids"], "properties": {
    "day": {"type": "string", "format": "date", "description": "the day the job runs (UTC)"},
    "status": {"enum": ["staging", "done", "withdrawn", "empty"]},
    "amplitude_ids": {"type": "array", "items": {
        "type": "object", "required": ["amplitude_id", "requester", "requested_on_day"], "properties": {
            "amplitude_id": {"type": "integer"}, "requester": {"type": "string"},
            "requested_on_day": {"type": "string", "format": "date"}}}}}}
_DELETION_REFUSALS = {
    "400": _reply("Refused: unknown IDs (named), more than 100 IDs, a bad day or range; nothing was stored",
                  _ERROR),
    "401": _reply("Missing or wrong credentials (HTTP Basic api_key:secret_key)", _ERROR),
    "503": _reply("Other writers kept winning the race; retry (Retry-After: 1)", _ERROR),
}
_DAY = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_CROSS_SITE = {"403": _reply("Sent by a browser for a page of another site (Origin, Sec-Fetch-Site); nothing was "
                             "stored", _ERROR)}


def _deletions() -> dict[str, Any]:
    """Amplitude's User Privacy API (v1) paths."""
    ids = {"amplitude_ids": {"type": "array", "maxItems": 100, "items": {"type": "integer", "minimum": 1}},
           "user_ids": {"type": "array", "maxItems": 100, "items": {"type": "string"}},
           "requester": {"type": "string"}, "ignore_invalid_id": {"type": "boolean"}}
    body = {"type": "object", "required": ["requester"], "properties": ids}
    return {
        "/api/2/deletions/users": {
            "post": {"summary": "Ask for people to be forgotten (at most 100 IDs); the job of the next day",
                     "security": [{"basic": []}],
                     "requestBody": {"required": True, "content": {JSON: {"schema": body},
                                                                  "application/x-www-form-urlencoded": {
                                                                      "schema": body}}},
                     "responses": {"200": _reply("The job, with this request's amplitude IDs", _JOB),
                                   **_DELETION_REFUSALS, **_CROSS_SITE, "413": _reply("Body too large", _ERROR),
                                   "415": _reply("Wrong Content-Type or Content-Encoding", _ERROR)}},
            "get": {"summary": "The deletion jobs of a range of days (at most six months)",
                    "security": [{"basic": []}],
                    "parameters": [_param("start_day", "query", _DAY, "first day", True),
                                   _param("end_day", "query", _DAY, "last day", True)],
                    "responses": {"200": _reply("The jobs, oldest first", {"type": "array", "items": _JOB}),
                                  **_DELETION_REFUSALS}}},
        "/api/2/deletions/users/{amplitude_id}/{day}": {
            "delete": {"summary": "Take an amplitude ID out of a job that has not run",
                       "security": [{"basic": []}],
                       "parameters": [_param("amplitude_id", "path", {"type": "integer", "minimum": 1},
                                             "the amplitude ID"), _param("day", "path", _DAY, "the job's day")],
                       "responses": {"200": _reply("The job without it", _JOB), **_DELETION_REFUSALS,
                                     **_CROSS_SITE}}},
    }


def _groups() -> dict[str, Any]:
    """The Group Identify API, the User Mapping API, and reading a group."""
    def fields(name: str, description: str) -> dict[str, Any]:
        return {"type": "object", "required": ["api_key", name], "properties": {
            "api_key": {"type": "string"}, name: {"type": "string", "description": description}}}

    identification = fields("identification", "one JSON object of group_type, group_value, group_properties, "
                                              "or an array of at most 1024")
    mapping = fields("mapping", 'one JSON object {"user_id", "global_user_id"} or {"user_id", "unmap": true}, '
                                "or an array of at most 2000")
    form = "application/x-www-form-urlencoded"
    mapped = _reply("Applied in order", _answer(**{name: {"type": "integer"}
                                                   for name in ("mapped", "unmapped", "unchanged")}))
    in_query = [_param(name, "query", {"type": "string"}, "or in the form body") for name in ("api_key", "mapping")]
    return {
        "/groupidentify": _upload("Amplitude Group Identify API (1 MiB; fields also in the query string)",
                                  identification, form),
        "/usermap": {
            "get": {"summary": "Amplitude User Mapping API", "parameters": in_query,
                    "responses": {"200": mapped, **_REFUSALS}},
            "post": {"summary": "Amplitude User Mapping API (1 MiB; fields also in the query string)",
                     "requestBody": {"content": {form: {"schema": mapping}}},
                     "responses": {"200": mapped, **_REFUSALS}}},
        "/v1/mappings": _query("Every mapping and unmapping of user IDs: who asked, when",
                               _answer(mappings={"type": "array", "items": _ref("MappingEntry")}),
                               [_param("user_id", "query", {"type": "string"}, "only those naming this user ID")]),
        "/v1/groups/{group_type}/{group_value}": _query(
            "A group: its properties, the amplitude IDs that have been members, when each joined", _ref("Group"),
            [_param("group_type", "path", {"type": "string"}, "the group type"),
             _param("group_value", "path", {"type": "string"}, "the group's name")]),
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    _, schemas = msgspec.json.schema_components([EventIn, Identity, TimelineEvent, Merge, AuditEntry, Correction,
                                                 CorrectionIn, Group, MappingEntry, Change], ref_template=_REF)
    schemas["Error"] = {
        "type": "object", "required": ["code", "error"],
        "properties": {"code": {"type": "integer"}, "error": {"type": "string"},
                       "missing_field": {"type": "string"},
                       "invalid_amplitude_ids": {"type": "array", "items": {"type": "integer"}},
                       "invalid_user_ids": {"type": "array", "items": {"type": "string"}},
                       "invalid_indices": {"type": "array", "items": {"type": "integer"},
                                           "description": "positions of the bad IDs in their list"},
                       "field": {"type": "string", "description": "the argument at fault (corrections)"},
                       **{key: {"type": "object", "description": "field name: indices of the bad events",
                                "additionalProperties": {"type": "array", "items": {"type": "integer"}}}
                          for key in (*BAD_EVENT_KEYS, "identifications_with_invalid_fields",
                                      "identifications_with_missing_fields", "mappings_with_invalid_fields")}},
    }
    upload = {"type": "object", "required": ["api_key", "events"], "properties": {
        "api_key": {"type": "string"}, "events": {"type": "array", "maxItems": 2000, "items": _ref("EventIn")},
        "options": {"type": "object", "properties": {"min_id_length": {"type": "integer", "minimum": 0}}}}}
    identity = _answer(**dict(schemas["Identity"]["properties"].items()))
    return {
        "openapi": "3.1.0",
        "info": {"title": "identity-ledger", "version": version("identity-ledger"),
                 "description": "Amplitude- and Segment-compatible ingest, and a query API of who every user is."},
        "components": {"schemas": schemas,
                       "securitySchemes": {"basic": {"type": "http", "scheme": "basic",
                                                     "description": "api_key as user name, secret_key as password"}}},
        "paths": {
            "/2/httpapi": _upload("Amplitude HTTP V2 API (1 MiB)", upload),
            "/batch": _upload("Amplitude Batch API (20 MiB)", upload),
            "/identify": _upload("Amplitude Identify API", {
                "type": "object", "required": ["api_key", "identification"], "properties": {
                    "api_key": {"type": "string"},
                    "identification": {"type": "string", "description": "one JSON object, or an array of them"}}},
                "application/x-www-form-urlencoded"),
            **{path: _segment("Segment batch API", {
                "type": "object", "required": ["batch"],
                "properties": {"batch": {"type": "array", "maxItems": 2000, "items": {"type": "object"}},
                               "writeKey": {"type": "string"}}}) for path in segment.BATCH_PATHS},
            **{path: _segment(f"Segment {kind} message", {"type": "object", "properties": {
                "writeKey": {"type": "string"}}}) for path, kind in segment.MESSAGE_PATHS.items()},
            "/v1/identities": _query("Who a user ID or device ID is", identity, _ID_PARAMS),
            "/v1/identities/{amplitude_id}": _query("Who an amplitude ID is", identity, [_AMPLITUDE_ID]),
            "/v1/identities/{amplitude_id}/timeline": _query(
                "One page of a person's merged timeline",
                _answer(amplitude_id={"type": "integer"}, events={"type": "array", "items": _ref("TimelineEvent")},
                        next={"type": ["integer", "null"], "description": "the `after` of the next page"}),
                [_AMPLITUDE_ID,
                 _param("after", "query", {"type": "integer", "minimum": 0}, "only events after this position"),
                 _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size")]),
            "/v1/changes": {"get": {
                "summary": "The change feed: identity facts after a position (docs/export.md)",
                "security": [{"basic": []}],
                "parameters": [
                    _param("after", "query", {"type": "integer", "minimum": 0}, "only changes after this position"),
                    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                    _param("wait", "query", {"type": "integer", "minimum": 0, "maximum": changes_api.MAX_WAIT},
                           "seconds to wait for a change when there is none yet")],
                "responses": {"200": _reply("The answer", _answer(
                    changes={"type": "array", "items": _ref("Change")},
                    next={"type": "integer", "description": "the `after` of the next request"})),
                    **_QUERY_REFUSALS}}},
            "/v1/merges": _query("Amplitude's merged-users table",
                                 _answer(merges={"type": "array", "items": _ref("Merge")}), []),
            "/v1/audit": _query("When, where and by which call IDs were bound, linked, moved, merged",
                                _answer(entries={"type": "array", "items": _ref("AuditEntry")}),
                                [*_ID_PARAMS, _param("amplitude_id", "query", {"type": "integer", "minimum": 1},
                                                     "or an amplitude ID")]),
            "/v1/stats": _query("Counts", _STATS, []),
            "/v1/explain/{position}": _query(
                "Why the tracked event at a position belongs to its person",
                _answer(position={"type": "integer"}, arrived_as={"type": "integer"},
                        now={"type": ["integer", "null"], "description": "null once its person is forgotten"},
                        because={"type": "array", "items": _ref("AuditEntry")}),
                [_param("position", "path", {"type": "integer", "minimum": 1}, "a tracked event's ledger position")]),
            **_deletions(),
            **_groups(),
            "/v1/corrections": {
                **_query("Every correction: who asked, why, when, what it changed",
                         _answer(corrections={"type": "array", "items": _ref("Correction")}), []),
                "post": {
                    "summary": "Retract a user ID: re-resolve every call it touched, as an audited correction",
                    "security": [{"basic": []}],
                    "requestBody": {"required": True, "content": {JSON: {"schema": _ref("CorrectionIn")}}},
                    "responses": {
                        "200": _reply("Corrected", _answer(correction=_ref("Correction"))),
                        "400": _reply("A bad body, or a bad user_id, reason or requester (named in `field`)",
                                      _ERROR),
                        "401": _QUERY_REFUSALS["401"],
                        **_CROSS_SITE,
                        "404": _reply("No stored call carries this user ID", _ERROR),
                        "409": _reply("This user ID is already retracted", _ERROR),
                        "413": _reply("Body larger than 64 KiB", _ERROR),
                        "415": _REFUSALS["415"],
                        "422": _reply("The people it touches hold events of release 0.1.0's shape", _ERROR),
                        "503": _REFUSALS["503"],
                    }}},
            "/healthz": {"get": {"summary": "Liveness: answers once the database does", "responses": {
                "200": _reply("Up", _answer(status={"const": "ok"}))}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "Prometheus text format", "content": {"text/plain": {}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {JSON: {}}}}}},
        },
    }


def route() -> Route:
    """`GET /openapi.json`, built once."""
    body = msgspec.json.encode(document())

    async def openapi(_: Request) -> Response:
        return Response(body, media_type=JSON)

    return Route("/openapi.json", openapi, methods=["GET"])
