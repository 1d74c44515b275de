"""The official Amplitude SDK against two buffered ingest servers in turn, two writers applying.

The five documented cases go to project `web`, one case per server in turn, while project
`app` is fed the same device IDs at the same time; both servers then answer the cases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from amplitude import Amplitude, BaseEvent, Config

from ledger import IdentityLedger
from ledger.buffer.stream import NatsLink
from ledger.buffer.writer import Writer
from ledger.server.projects import ProjectConfig
from tests.buffer_helpers import APP, WEB, stats
from tests.server.test_server_sdks import CASES, EXPECTED, device, flush, original_amplitude_ids, user


def send(url: str, api_key: str, rows: list[tuple[str, str | None]]) -> list[str]:
    """Track `rows` with an unmodified Amplitude SDK; every event must be reported sent."""
    replies: list[int] = []
    client = Amplitude(api_key, Config(server_url=f"{url}/2/httpapi", flush_interval_millis=50,
                                       callback=lambda event, code, message: replies.append(code)))
    events = [BaseEvent("view", device_id=device(letter), user_id=user(name)) for letter, name in rows]
    for event in events:
        client.track(event)
    flush(client)
    client.shutdown()
    assert replies == [200] * len(rows)
    return [event.insert_id for event in events]


@pytest.fixture
def writers(configs: list[ProjectConfig], link: NatsLink) -> Iterator[None]:
    """One writer per project, each in its own thread, as `ledger apply` runs them."""
    stop = threading.Event()
    ledgers = [IdentityLedger(config.db) for config in configs]
    threads = [threading.Thread(target=Writer(ledger, link, config.name).run, args=(stop, 0.2))
               for ledger, config in zip(ledgers, configs, strict=True)]
    for thread in threads:
        thread.start()
    yield
    stop.set()
    for thread, ledger in zip(threads, ledgers, strict=True):
        thread.join(10)
        ledger.close()


def caught_up(url: str, auth: tuple[str, str], events: int) -> dict:
    deadline = time.monotonic() + 20
    while (answer := stats(url, auth))["lag"] or answer["events"] < events:
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)
    return answer


def test_the_five_documented_cases_through_two_buffered_servers_beside_another_project(
        servers: list[str], writers: None) -> None:
    stop = threading.Event()
    fed: list[int] = []

    def feed_app() -> None:
        """Project `app` meets the same devices, each tied to a user there."""
        while not stop.is_set() and len(fed) < 40:
            letter = "ABCGKLRYZ"[len(fed) % 9]
            fed.extend([1] * len(send(servers[len(fed) % 2], "app-key-2", [(letter, f"Other{letter}")])))

    feeder = threading.Thread(target=feed_app)
    feeder.start()
    insert_ids = [send(servers[case % 2], "web-key-1", rows) for case, rows in enumerate(CASES)]
    stop.set()
    feeder.join(30)

    for url in servers:
        caught_up(url, WEB, 20)
        with httpx.Client(base_url=url, auth=WEB, timeout=10) as query:
            assert [original_amplitude_ids(query, ids) for ids in insert_ids] == EXPECTED
            merges = query.get("/v1/merges").json()["merges"]
            assert [(m["amplitude_id"], m["merged_amplitude_id"]) for m in merges] == [(9, 8)]
            david = query.get("/v1/identities", params={"user_id": "user-David"}).json()
            assert (david["amplitude_id"], david["merged_amplitude_ids"]) == (8, [9])
            assert query.get("/v1/identities", params={"device_id": "device-A"}).json()["user_id"] is None
            assert query.get("/v1/identities", params={"user_id": "user-OtherA"}).status_code == 404
        counts = caught_up(url, WEB, 20)
        assert (counts["events"], counts["users"], counts["identified_users"], counts["merges"]) == (20, 8, 5, 1)
        app = caught_up(url, APP, len(fed))
        assert (app["events"], app["merges"]) == (len(fed), 0)
        with httpx.Client(base_url=url, auth=APP, timeout=10) as query:
            assert query.get("/v1/identities", params={"device_id": "device-A"}).json()["user_id"] == "user-OtherA"
