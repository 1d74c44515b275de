"""The buffered deployment: ingest servers publish to JetStream, one writer per project applies, exactly once."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import nats.errors
import pytest

from ledger import IdentityLedger
from ledger.buffer.lock import LockWaitAbandoned, WriterBusy, writer_lock
from ledger.buffer.stream import BadBufferURL, BufferConfig, NatsLink
from ledger.buffer.writer import Writer
from ledger.errors import BufferUnavailable
from ledger.server.app import create_app
from ledger.server.projects import ProjectConfig
from ledger.server.registry import open_projects
from tests.buffer_helpers import WEB, stats
from tests.server_helpers import running_app


def writer(config: ProjectConfig, link: NatsLink, **options: Any) -> Writer:
    ledger = IdentityLedger(config.db)
    return Writer(ledger, link, config.name, **options)


def upload(url: str, api_key: str, *events: dict) -> httpx.Response:
    return httpx.post(f"{url}/2/httpapi", json={"api_key": api_key, "events": list(events)}, timeout=30)


def track(device: str, user: str | None = None, insert_id: str | None = None) -> dict:
    return {"event_type": "view", "device_id": device, "user_id": user, "insert_id": insert_id}


def test_a_buffered_upload_is_answered_once_logged_and_resolvable_once_applied(
        servers: list[str], configs: list[ProjectConfig], link: NatsLink) -> None:
    first, second = servers
    reply = upload(first, "web-key-1", track("device-G"), track("device-G", "user-John"))
    assert reply.status_code == 200 and reply.json()["events_ingested"] == 2
    before = stats(second, WEB)
    assert (before["events"], before["applied_sequence"], before["stream_sequence"], before["lag"]) == (0, 0, 1, 1)
    web = writer(configs[0], link)
    assert web.apply_available() == 1
    after = stats(second, WEB)
    assert (after["events"], after["users"], after["lag"]) == (2, 1, 0)
    john = httpx.get(f"{first}/v1/identities", params={"user_id": "user-John"}, auth=WEB).json()
    assert (john["amplitude_id"], john["device_ids"]) == (1, ["device-G"])
    web.ledger.close()


def test_groups_travel_through_the_buffer_and_the_writer_applies_them(
        servers: list[str], configs: list[ProjectConfig], link: NatsLink) -> None:
    first, _ = servers
    member = {**track("device-G", "user-John"), "groups": {"org": "acme"}}
    assert upload(first, "web-key-1", member).status_code == 200
    identification = '{"group_type": "org", "group_value": "acme", "group_properties": {"plan": "pro"}}'
    reply = httpx.post(f"{first}/groupidentify", data={"api_key": "web-key-1", "identification": identification})
    assert reply.status_code == 200 and reply.json()["events_ingested"] == 1
    assert httpx.get(f"{first}/v1/groups/org/acme", auth=WEB).status_code == 404  # not applied yet
    web = writer(configs[0], link)
    assert web.apply_available() == 2
    acme = httpx.get(f"{first}/v1/groups/org/acme", auth=WEB).json()
    assert (acme["properties"], acme["amplitude_ids"]) == ({"plan": "pro"}, [1])
    web.ledger.close()


BAD_REQUESTS: list[dict[str, Any]] = [
    {"json": {"api_key": "web-key-1"}},
    {"json": {"api_key": "nope", "events": [track("device-1")]}},
    {"json": {"api_key": "web-key-1", "events": [{"event_type": "x", "device_id": "null"}, {"device_id": "dev-12"}]}},
    {"json": {"api_key": "web-key-1", "events": [track("abc")]}},
    {"json": {"api_key": "web-key-1", "events": [track("device-1")] * 2001}},
    {"json": {"api_key": "web-key-1", "events": [track("device-1")], "options": {"min_id_length": -1}}},
    {"content": b"{not json", "headers": {"content-type": "application/json"}},
]


def test_refusals_are_byte_for_byte_those_of_direct_mode_and_nothing_is_logged(
        configs: list[ProjectConfig], buffer_url: str, link: NatsLink) -> None:
    with open_projects(configs) as direct, running_app(create_app(direct)) as direct_url, \
            open_projects(configs, buffer_url) as buffered, running_app(create_app(buffered)) as buffered_url:
        for request in BAD_REQUESTS:
            expected = httpx.post(f"{direct_url}/2/httpapi", **request)
            got = httpx.post(f"{buffered_url}/2/httpapi", **request)
            assert (got.status_code, got.content) == (expected.status_code, expected.content)
            assert got.status_code in (400, 413)
    assert link.last_sequence("web") == 0


def test_a_retried_request_is_logged_once(servers: list[str], configs: list[ProjectConfig], link: NatsLink) -> None:
    body = [track("device-1", insert_id="i-1"), track("device-2")]
    assert [upload(url, "web-key-1", *body).status_code for url in servers] == [200, 200]
    assert link.last_sequence("web") == 1
    web = writer(configs[0], link)
    web.apply_available()
    assert web.ledger.stats().events == 2
    web.ledger.close()


def test_a_redelivered_request_is_recognised_by_its_stored_sequence(
        servers: list[str], configs: list[ProjectConfig], link: NatsLink) -> None:
    for n in range(5):
        upload(servers[n % 2], "web-key-1", track(f"device-{n}"))
    web = writer(configs[0], link)
    assert web.apply_available() == 5
    # A consumer that lags the ledger (a crash between commit and ack) delivers all five again.
    again = Writer(web.ledger, link, "web")
    stored, again.applied = again.applied, 0
    again._subscribe()
    again.applied = stored
    assert again.apply_available() == 0
    assert web.ledger.stats().events == 5
    web.ledger.close()


def test_a_writer_that_dies_between_commit_and_ack_is_resumed_without_a_request_twice(
        servers: list[str], configs: list[ProjectConfig], link: NatsLink) -> None:
    for n in range(30):
        upload(servers[n % 2], "web-key-1", track(f"device-{n % 7}", f"user-{n % 3}" if n % 4 else None, f"i-{n}"))
    ledger = IdentityLedger(configs[0].db)
    doomed = Writer(ledger, link, "web", fetch=8)
    record = ledger.store_accepted

    def crash_after_the_first_batch(*args: Any, **kwargs: Any) -> Any:
        record(*args, **kwargs)
        raise SystemExit("killed after commit, before ack")

    ledger.store_accepted = crash_after_the_first_batch  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        doomed.apply_available()
    ledger.close()
    restarted = writer(configs[0], link, fetch=8)
    assert restarted.applied == 8
    assert restarted.apply_available() == 22
    assert restarted.ledger.stats().events == 30
    with restarted.ledger.as_of(restarted.ledger.position) as replayed:  # the servers hold the ledger open
        assert replayed.stats() == restarted.ledger.stats()
    restarted.ledger.close()


def test_one_writer_per_project_a_second_refuses_or_waits(configs: list[ProjectConfig]) -> None:
    web, app = configs
    with writer_lock("web", web.db, wait=False):
        with pytest.raises(WriterBusy, match="another writer applies project 'web'"):
            with writer_lock("web", web.db, wait=False):
                pass
        with writer_lock("app", app.db, wait=False):  # writers may split the projects
            pass
        released = threading.Event()
        waiting = threading.Thread(target=lambda: _take(web, released))
        waiting.start()
        assert not released.wait(0.5)
    assert released.wait(10)
    waiting.join()


def _take(config: ProjectConfig, taken: threading.Event) -> None:
    with writer_lock(config.name, config.db):
        taken.set()


def test_a_writer_waiting_for_the_lock_gives_up_when_told_to_stop(configs: list[ProjectConfig]) -> None:
    web = configs[0]
    stop = threading.Event()
    outcome: list[BaseException] = []
    with writer_lock("web", web.db, wait=False):
        waiting = threading.Thread(target=lambda: _wait_for(web, stop, outcome))
        waiting.start()
        stop.set()
        waiting.join(5)
        assert not waiting.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], LockWaitAbandoned)


def _wait_for(config: ProjectConfig, stop: threading.Event, outcome: list[BaseException]) -> None:
    try:
        with writer_lock(config.name, config.db, until=stop):
            pass
    except LockWaitAbandoned as error:
        outcome.append(error)


def test_closing_the_link_releases_a_call_waiting_on_it_and_refuses_later_ones(buffer_url: str) -> None:
    link = NatsLink(BufferConfig.from_url(buffer_url))
    outcome: list[BaseException] = []
    waiting = threading.Thread(target=lambda: _call_forever(link, outcome))
    waiting.start()
    time.sleep(0.2)
    started = time.monotonic()
    link.close(2)
    waiting.join(5)
    assert not waiting.is_alive() and time.monotonic() - started < 3
    assert len(outcome) == 1 and isinstance(outcome[0], nats.errors.ConnectionClosedError)
    with pytest.raises(nats.errors.ConnectionClosedError):
        link.call(asyncio.sleep(0))
    link.close()  # twice is harmless


def _call_forever(link: NatsLink, outcome: list[BaseException]) -> None:
    try:
        link.call(asyncio.sleep(3600))
    except BaseException as error:
        outcome.append(error)


def test_a_call_that_times_out_is_cancelled_on_the_loop(link: NatsLink) -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        link.call(slow(), 0.1)
    assert cancelled.wait(2)


def test_an_unreachable_log_is_a_retryable_503(configs: list[ProjectConfig], buffer_url: str) -> None:
    with open_projects(configs, buffer_url) as projects, running_app(create_app(projects)) as url:
        link = projects.uploading("web-key-1")._link
        link.call(link.nc.close())
        reply = upload(url, "web-key-1", track("device-1"))
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert reply.json()["code"] == 503


def test_a_buffer_url_names_servers_prefix_and_replicas() -> None:
    buffer = BufferConfig.from_url("nats://n1:4222,nats://n2:4222?prefix=Prod&replicas=3")
    assert (buffer.servers, buffer.prefix, buffer.replicas) == (("nats://n1:4222", "nats://n2:4222"), "Prod", 3)
    assert (buffer.stream("web"), buffer.subject("web")) == ("Prod_web", "Prod.web")
    config = buffer.stream_config("web")
    assert (config.num_replicas, config.storage.value, config.discard.value) == (3, "file", "new")


@pytest.mark.parametrize("url, complaint", [
    ("http://127.0.0.1:4222", "not a NATS URL"),
    ("", "not a NATS URL"),
    ("nats://127.0.0.1:4222?prefix=a.b", "bad stream prefix"),
    ("nats://127.0.0.1:4222?replicas=7", "replicas must be 1 to 5"),
    ("nats://127.0.0.1:4222?stream=x", "unknown buffer option 'stream'"),
])
def test_a_bad_buffer_url_is_refused_saying_why(url: str, complaint: str) -> None:
    with pytest.raises(BadBufferURL, match=complaint):
        BufferConfig.from_url(url)


def test_an_unreachable_nats_server_is_refused_at_start() -> None:
    with pytest.raises(BufferUnavailable, match="cannot reach NATS"):
        NatsLink(BufferConfig.from_url("nats://127.0.0.1:9"), connect_timeout=0.5)
