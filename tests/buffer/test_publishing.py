"""Publishing: an upload met by a moment without a stream leader waits for one instead of failing at once;
a stream JetStream will not make as configured is refused at start, saying why."""

from __future__ import annotations

import threading

import httpx
import pytest

from ledger.buffer.stream import BufferConfig, NatsLink, StreamRefused
from ledger.server.app import create_app
from ledger.server.projects import ProjectConfig
from ledger.server.registry import open_projects
from tests.server_helpers import running_app


def upload(url: str, device: str) -> httpx.Response:
    return httpx.post(f"{url}/2/httpapi", json={"api_key": "web-key-1", "events": [
        {"event_type": "view", "device_id": device}]}, timeout=30)


def test_an_upload_while_no_stream_answers_is_retried_until_one_stores_it(
        configs: list[ProjectConfig], buffer_url: str, link: NatsLink) -> None:
    """JetStream answers "no responders" at once while a stream has no leader (an election, a
    stream being placed): the server tries again with the same Nats-Msg-Id for its 5 s budget."""
    with open_projects(configs, buffer_url) as projects, running_app(create_app(projects)) as url:
        assert upload(url, "device-1").status_code == 200
        link.call(link.js.delete_stream(link.buffer.stream("web")), 10)
        back = threading.Timer(1.0, lambda: link.ensure_stream("web"))
        back.start()
        try:
            reply = upload(url, "device-2")
        finally:
            back.join()
        assert reply.status_code == 200, reply.text
        assert link.last_sequence("web") == 1


def test_an_upload_is_answered_503_with_retry_after_once_no_stream_stored_it_in_time(
        configs: list[ProjectConfig], buffer_url: str, link: NatsLink) -> None:
    with open_projects(configs, buffer_url) as projects, running_app(create_app(projects)) as url:
        link.call(link.js.delete_stream(link.buffer.stream("web")), 10)
        reply = upload(url, "device-1")
    assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
    assert "NoStreamResponseError" in reply.json()["error"]


def test_replicas_beyond_one_on_a_server_outside_a_cluster_are_refused_saying_why(buffer_url: str) -> None:
    with NatsLink(BufferConfig.from_url(buffer_url + "&replicas=3")) as three:
        with pytest.raises(StreamRefused, match=r"refused the stream .*_web: replicas > 1 not supported"):
            three.ensure_stream("web")
