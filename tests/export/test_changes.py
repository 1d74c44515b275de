"""The change feed: `lg.changes` and `GET /v1/changes` (pages, long-polling, hang-ups, hostile parameters)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from ledger import IdentityLedger
from ledger.server.app import create_app
from tests.export.test_export_cli import history
from tests.export.test_groups_and_mappings import history as groups_and_mappings
from tests.server_helpers import API_KEY, SECRET_KEY, running_app, wait_for


def all_changes(lg: IdentityLedger, limit: int) -> list[Any]:
    found, after = [], 0
    while True:
        page = lg.changes(after, limit)
        if not page.changes:
            assert page.next == lg.position
            return found
        assert all(after < change.position <= page.next for change in page.changes)
        found += page.changes
        after = page.next


def test_every_identity_fact_is_a_change_in_ledger_order(lg: IdentityLedger) -> None:
    history(lg)
    changes = all_changes(lg, 1000)
    kinds = [change.kind for change in changes]
    assert {"created", "linked", "bound", "pointer_moved", "merged", "corrected", "forgotten"} == set(kinds)
    assert [change.position for change in changes] == sorted({change.position for change in changes})
    merged = next(change for change in changes if change.kind == "merged")
    maria = lg.resolve(user_id="maria-1")
    assert maria is not None and merged.other_amplitude_id == maria.amplitude_id
    assert merged.amplitude_id in maria.merged_amplitude_ids and merged.device_id == "laptop-3"
    forgotten = next(change for change in changes if change.kind == "forgotten")
    assert forgotten.amplitude_ids and all(lg.is_forgotten(amplitude_id) for amplitude_id in forgotten.amplitude_ids)
    assert "frank-1" not in repr(changes) and "phone-22" not in repr(changes)  # forgotten people's facts are gone
    assert all_changes(lg, 1) == changes == all_changes(lg, 3)


def test_the_http_feed_answers_what_the_library_does(lg: IdentityLedger) -> None:
    history(lg)
    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as url:
        answer = httpx.get(f"{url}/v1/changes", params={"after": 0, "limit": 5}, auth=(API_KEY, SECRET_KEY)).json()
        page = lg.changes(0, 5)
        assert answer["next"] == page.next
        assert [change["kind"] for change in answer["changes"]] == [change.kind for change in page.changes]
        assert httpx.get(f"{url}/v1/changes").status_code == 401
        assert httpx.get(f"{url}/v1/changes", auth=(API_KEY, "wrong")).status_code == 401


@pytest.mark.parametrize("query", ["after=-1", "after=abc", "after=99999999999999999999999", "after=1.5",
                                   "after=%00", "limit=0", "limit=1001", "limit=-5", "wait=61", "wait=-1",
                                   "wait=1e3", "limit=" + "9" * 5000])
def test_hostile_parameters_are_a_400(lg: IdentityLedger, query: str) -> None:
    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as url:
        answer = httpx.get(f"{url}/v1/changes?{query}", auth=(API_KEY, SECRET_KEY))
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == 400 and query.split("=")[0] in answer.json()["error"]


def test_wait_answers_when_a_change_arrives(lg: IdentityLedger) -> None:
    lg.ingest([{"device_id": "kiosk-1", "event_type": "view"}])
    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as url:
        position = lg.position
        later = threading.Timer(0.5, lambda: lg.ingest([{"device_id": "phone-22", "event_type": "view"}]))
        later.start()
        answer = httpx.get(f"{url}/v1/changes", params={"after": position, "wait": 30},
                           auth=(API_KEY, SECRET_KEY), timeout=60).json()
        later.join()
        assert {change["device_id"] for change in answer["changes"]} == {"phone-22"}
        quiet = httpx.get(f"{url}/v1/changes", params={"after": lg.position, "wait": 1},
                          auth=(API_KEY, SECRET_KEY), timeout=60).json()
        assert quiet == {"code": 200, "changes": [], "next": lg.position}


def test_a_wait_stops_when_its_client_hangs_up(lg: IdentityLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    looks: list[int] = []
    changes: Callable[..., Any] = lg.changes
    monkeypatch.setattr(lg, "changes", lambda *args: looks.append(1) or changes(*args))
    auth = base64.b64encode(f"{API_KEY}:{SECRET_KEY}".encode()).decode()
    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as url:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as client:
            client.sendall(f"GET /v1/changes?wait=60 HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                           f"Authorization: Basic {auth}\r\n\r\n".encode())
            wait_for(lambda: len(looks) >= 3, "the wait did not start")
        # the client hung up: the wait stops within a few looks, not after its 60 seconds
        deadline = time.monotonic() + 10
        while True:
            before = len(looks)
            time.sleep(1)
            if len(looks) == before:
                break
            assert time.monotonic() < deadline, "the wait went on after its client hung up"


def test_mappings_unmappings_and_group_memberships_are_changes(lg: IdentityLedger) -> None:
    groups_and_mappings(lg)
    changes = all_changes(lg, 1000)
    maria, frank, olga = (lg.resolve(user_id=user_id) for user_id in ("maria-1", "frank-1", "olga-77"))
    assert maria is not None and frank is not None and olga is not None
    assert [(change.kind, change.user_id, change.amplitude_id, change.other_user_id, change.other_amplitude_id)
            for change in changes if change.kind in ("mapped", "unmapped")] == [
        ("mapped", "frank-1", frank.amplitude_id, "maria-1", maria.amplitude_id),
        ("unmapped", "frank-1", frank.amplitude_id, "maria-1", maria.amplitude_id),
        ("mapped", "frank-1", frank.amplitude_id, "olga-77", olga.amplitude_id),
        ("mapped", "team-login", None, "olga-77", olga.amplitude_id)]  # a user ID no call has carried yet
    assert [(change.amplitude_id, change.user_id, change.groups) for change in changes
            if change.kind == "joined_group"] == [
        (maria.amplitude_id, "maria-1", {"org": ["acme"]}),
        (olga.amplitude_id, "olga-77", {"plan": ["gold"], "org": ["globex"]})]
    assert all_changes(lg, 1) == changes
    lg.forget(user_ids=["olga-77"], requester="dpo", now=True)
    after = all_changes(lg, 1000)
    assert "olga-77" not in repr(after) and [change.kind for change in after].count("mapped") == 1


def test_a_mapping_is_given_the_amplitude_ids_bound_when_it_was_made(lg: IdentityLedger) -> None:
    lg.ingest([{"device_id": "kiosk-1", "user_id": "maria-1", "event_type": "view"},
               {"device_id": "kiosk-1", "user_id": "staff-login", "event_type": "view"},
               {"device_id": "phone-22", "user_id": "staff-login", "event_type": "view"}])
    lg.map_user("maria-1", "staff-login")
    before = lg.resolve(user_id="staff-login")
    lg.retract_user_id("staff-login", reason="typed by staff")
    mapped = next(change for change in all_changes(lg, 1000) if change.kind == "mapped")
    assert before is not None and mapped.other_amplitude_id == before.amplitude_id
