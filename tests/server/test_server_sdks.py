"""The official Amplitude and Segment SDKs, unmodified, against `ledger serve`, checked through the query API.

Both replay the five documented cases of docs/rules.md in arrival order on one fresh ledger, so the
amplitude IDs are exactly the documented ones: 1,2,2,3,1,3 / 4,4,4 / 5,5 / 6,6,7,7,7 / 8,9,8,8.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from amplitude import Amplitude, BaseEvent, Config, EventOptions, Identify
from segment.analytics import Client

from ledger import IdentityLedger
from tests.server_helpers import API_KEY, basic

Row = tuple[str, str | None]
CASES: list[list[Row]] = [
    [("A", None), ("B", None), ("B", None), ("C", None), ("A", None), ("C", None)],
    [("G", None), ("G", None), ("G", "John")],
    [("K", "Zack"), ("L", "Zack")],
    [("R", "Jane"), ("R", None), ("R", "Mary"), ("R", None), ("R", None)],
    [("Y", "David"), ("Z", None), ("Z", "David"), ("Z", None)],
]
EXPECTED = [[1, 2, 2, 3, 1, 3], [4, 4, 4], [5, 5], [6, 6, 7, 7, 7], [8, 9, 8, 8]]


def device(letter: str) -> str:
    return f"device-{letter}"


def user(name: str | None) -> str | None:
    """SDKs drop IDs shorter than 5 characters by default, so the documented names get a prefix."""
    return name and f"user-{name}"


# -- the two SDKs as senders: each sends rows as track calls and returns their insert_ids -------


def amplitude_client(url: str, replies: list[int], **options: object) -> Amplitude:
    """An unmodified Amplitude SDK pointed at the server; `replies` collects each event's status code."""
    config = Config(server_url=f"{url}/2/httpapi", flush_interval_millis=100,
                    callback=lambda event, code, message: replies.append(code), **options)
    return Amplitude(API_KEY, config)


def flush(client: Amplitude) -> None:
    for future in client.flush():
        if future is not None:
            future.result(timeout=30)


def send_with_amplitude(url: str, rows: list[Row]) -> list[str]:
    replies: list[int] = []
    client = amplitude_client(url, replies)
    events = [BaseEvent("view", device_id=device(letter), user_id=user(name)) for letter, name in rows]
    for event in events:
        client.track(event)
    flush(client)
    client.shutdown()
    assert replies == [200] * len(rows), "the SDK did not report every event as sent"
    return [event.insert_id for event in events]


def segment_client(url: str, **options: object) -> Client:
    """An unmodified Segment SDK pointed at the server; any failure raises in sync mode."""
    return Client(API_KEY, host=url, sync_mode=True, max_retries=0, **options)


def send_with_segment(url: str, rows: list[Row]) -> list[str]:
    client = segment_client(url)
    sent = [client.track(user(name), "view", anonymous_id=device(letter))[1] for letter, name in rows]
    return [message["messageId"] for message in sent]


SENDERS: dict[str, Callable[[str, list[Row]], list[str]]] = {
    "amplitude": send_with_amplitude,
    "segment": send_with_segment,
}


def original_amplitude_ids(query: httpx.Client, insert_ids: list[str]) -> list[int]:
    """The amplitude ID each event got on arrival, read back from every person's timeline."""
    given: dict[str, int] = {}
    for amplitude_id in range(1, query.get("/v1/stats").json()["users"] + 10):
        reply = query.get(f"/v1/identities/{amplitude_id}/timeline", params={"limit": 1000})
        for event in reply.json().get("events", []):
            given[event["insert_id"]] = event["original_amplitude_id"]
    return [given[insert_id] for insert_id in insert_ids]


def identity(query: httpx.Client, **params: str) -> dict:
    reply = query.get("/v1/identities", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.mark.parametrize("sdk", SENDERS)
def test_the_five_documented_cases(sdk: str, url: str, query: httpx.Client) -> None:
    send = SENDERS[sdk]
    insert_ids = [send(url, rows) for rows in CASES]
    assert [original_amplitude_ids(query, ids) for ids in insert_ids] == EXPECTED

    # 1: three anonymous users, one per device.
    assert [identity(query, device_id=device(d))["amplitude_id"] for d in "ABC"] == [1, 2, 3]
    # 2: John did all three events of device G.
    john = identity(query, user_id="user-John")
    assert john["amplitude_id"] == 4 and john["merged_amplitude_ids"] == []
    assert len(query.get("/v1/identities/4/timeline").json()["events"]) == 3
    # 3: one user on two devices.
    zack = identity(query, user_id="user-Zack")
    assert zack["amplitude_id"] == 5 and zack["device_ids"] == ["device-K", "device-L"]
    # 4: two users on one device, no merge; anonymous events go to the last known user.
    assert identity(query, device_id="device-R")["amplitude_id"] == 7
    assert identity(query, user_id="user-Jane")["amplitude_id"] == 6
    # 5: 9 merged into 8.
    merges = query.get("/v1/merges").json()
    assert [(m["amplitude_id"], m["merged_amplitude_id"]) for m in merges["merges"]] == [(9, 8)]
    david = identity(query, user_id="user-David")
    assert david["amplitude_id"] == 8 and david["merged_amplitude_ids"] == [9]
    assert query.get("/v1/identities/9/timeline").json()["amplitude_id"] == 8
    stats = query.get("/v1/stats").json()
    del stats["position"]
    assert stats == {"code": 200, "events": 20, "users": 8, "identified_users": 5, "devices": 9, "merges": 1}


def test_amplitude_identify_sets_user_properties_without_counting_an_event(url: str, query: httpx.Client) -> None:
    replies: list[int] = []
    client = amplitude_client(url, replies)
    client.track(BaseEvent("view", device_id="device-G"))
    john = EventOptions(device_id="device-G", user_id="user-John")
    client.identify(Identify().set("plan", "pro").add("logins", 2), john)
    client.track(BaseEvent("view", device_id="device-G"))
    flush(client)
    client.shutdown()
    assert replies == [200, 200, 200]
    person = identity(query, user_id="user-John")
    assert person["amplitude_id"] == 1 and person["user_properties"] == {"plan": "pro", "logins": 2}
    events = query.get("/v1/identities/1/timeline").json()["events"]
    assert [(e["event_type"], e["user_properties"]) for e in events] == [
        ("view", {}), ("view", {"plan": "pro", "logins": 2}),
    ]


def test_amplitude_min_id_length_option_reaches_the_ledger(url: str, query: httpx.Client) -> None:
    replies: list[int] = []
    client = amplitude_client(url, replies, min_id_length=3)
    client.track(BaseEvent("view", device_id="dev", user_id="Ann"))
    flush(client)
    client.shutdown()
    assert replies == [200]
    assert identity(query, user_id="Ann")["device_ids"] == ["dev"]


def test_amplitude_sdk_drops_only_the_bad_event_and_resends_the_rest(url: str, query: httpx.Client) -> None:
    replies: list[int] = []
    client = amplitude_client(url, replies)
    client.track(BaseEvent("view", device_id="device-A"))
    client.track(BaseEvent("view", device_id="device-B", user_id="null"))  # a blocked ID
    flush(client)
    client.shutdown()
    assert sorted(replies) == [200, 400]
    assert query.get("/v1/stats").json()["events"] == 1


def test_segment_identify_page_screen_group_and_alias(url: str, query: httpx.Client) -> None:
    client = segment_client(url)
    client.page(anonymous_id="anon-12345", name="Pricing", properties={"path": "/pricing"})
    client.identify("user-Jane", {"email": "jane@example.com", "missing": None}, anonymous_id="anon-12345")
    client.screen("user-Jane", name=None)
    client.group("user-Jane", "group-acme", {"employees": 10})
    client.group("user-Jane", "group-acme")
    client.alias("anon-12345", "user-Other")
    jane = identity(query, user_id="user-Jane")
    assert jane["amplitude_id"] == 1 and jane["device_ids"][0] == "anon-12345"
    assert jane["user_properties"] == {"email": "jane@example.com", "missing": None, "groups": ["group-acme"]}
    events = query.get("/v1/identities/1/timeline").json()["events"]
    assert [(e["event_type"], e["event_properties"]) for e in events] == [
        ("Viewed Pricing Page", {"path": "/pricing", "name": "Pricing"}),
        ("Loaded a Screen", {}),
    ]
    assert query.get("/v1/identities", params={"user_id": "user-Other"}).status_code == 404


def test_segment_timestamp_becomes_the_event_time(url: str, query: httpx.Client) -> None:
    client = segment_client(url)
    client.track(anonymous_id="device-A", event="view", timestamp=datetime(2024, 1, 2, 3, 4, 5, 678000, UTC))
    [event] = query.get("/v1/identities/1/timeline").json()["events"]
    assert event["time"] == 1704164645678


def test_segment_gzip_bodies_are_accepted(url: str, query: httpx.Client) -> None:
    segment_client(url, gzip=True).track(anonymous_id="device-A", event="view")
    assert query.get("/v1/stats").json()["events"] == 1


def test_segment_batch_with_a_bad_message_is_refused_whole_with_its_batch_index(http: httpx.Client,
                                                                              lg: IdentityLedger) -> None:
    before = lg.position
    batch = [
        {"type": "alias", "previousId": "anon-1", "userId": "user-1"},
        {"type": "track", "event": "view", "anonymousId": "device-A", "userId": None, "messageId": "m-1"},
        {"type": "track", "event": "view", "anonymousId": "device-B", "userId": 12345},
        {"type": "track", "event": "view", "anonymousId": "device-C", "timestamp": "yesterday"},
    ]
    body = gzip.compress(json.dumps({"batch": batch}).encode())
    reply = http.post("/v1/batch", content=body, headers={
        "Content-Type": "application/json", "Content-Encoding": "gzip", **basic(API_KEY, ""),
    })
    assert reply.status_code == 400
    assert reply.json() == {
        "code": 400,
        "error": "Invalid field values on some events",
        "events_with_invalid_fields": {"user_id": [2], "time": [3]},
    }
    assert lg.position == before


def test_segment_sdk_with_an_unknown_write_key_is_told_401(url: str, lg: IdentityLedger,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    client = Client("unknown-key", host=url, sync_mode=True, max_retries=0)
    with caplog.at_level(logging.CRITICAL), pytest.raises(Exception) as caught:
        client.track(anonymous_id="device-A", event="view")
    assert getattr(caught.value, "status", None) == 401
    assert lg.position == 0


def test_amplitude_set_group_and_group_identify_reach_the_group(url: str, query: httpx.Client) -> None:
    """`set_group` is an identify call carrying `groups`; `group_identify` a `$groupidentify` event."""
    replies: list[int] = []
    client = amplitude_client(url, replies)
    options = EventOptions(user_id="user-Gail", device_id="device-gail")
    client.set_group("org id", ["1234", "5678"], options)
    client.group_identify("org id", "1234", Identify().set("plan", "Enterprise").add("seats", 10), options)
    client.track(BaseEvent("view", user_id="user-Gail", device_id="device-gail", groups={"team": "red"}))
    flush(client)
    client.shutdown()
    assert replies == [200, 200, 200]
    gail = query.get("/v1/identities", params={"user_id": "user-Gail"}).json()
    assert gail["groups"] == {"org id": ["1234", "5678"], "team": ["red"]}
    assert gail["user_properties"] == {"org id": ["1234", "5678"]}
    group = query.get("/v1/groups/org id/1234").json()
    assert (group["properties"], group["amplitude_ids"]) == ({"plan": "Enterprise", "seats": 10}, [gail["amplitude_id"]])
    assert query.get("/v1/stats").json()["events"] == 1  # set_group and group_identify count no event
