"""Operator actions in the buffered deployment finish while `ledger apply` stores steady ingest.

A correction posted to a buffered server is made by that server's process in the writer's
turn (the database's write lock): the project's writer waits for it, then goes on applying
the stream, and every request the servers acknowledged is stored once.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import msgspec

from ledger import IdentityLedger
from ledger.buffer.stream import NatsLink
from ledger.buffer.writer import Writer
from ledger.server.app import create_app
from ledger.server.projects import ProjectConfig
from ledger.server.registry import open_projects
from tests.buffer_helpers import WEB_SECRET
from tests.server_helpers import running_app
from tests.store.test_operator_turns import BACKGROUND, DEVICES, glued_component, plain

WEB = ("web-key-1", WEB_SECRET)
REASON = "a shared test account"


class SteadyUploads:
    """A client uploading small unrelated requests to a buffered server; remembers what was acknowledged."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._stop = threading.Event()
        self.acknowledged: list[str] = []
        self.refused: list[str] = []
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        number = 0
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                number += 1
                events = [{"event_type": "view", "device_id": BACKGROUND[(number + n) % len(BACKGROUND)],
                           "insert_id": f"steady-{number}-{n}"} for n in range(3)]
                reply = client.post(f"{self._url}/2/httpapi", json={"api_key": "web-key-1", "events": events})
                if reply.status_code == 200:
                    self.acknowledged.extend(event["insert_id"] for event in events)
                else:
                    self.refused.append(reply.text)
                self._stop.wait(0.01)

    def __enter__(self) -> SteadyUploads:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def applying(config: ProjectConfig, link: NatsLink, stop: threading.Event) -> threading.Thread:
    """`ledger apply` for the project, in a thread, until `stop`."""
    def run() -> None:
        with IdentityLedger(config.db) as ledger:
            writer = Writer(ledger, link, config.name)
            writer.run(stop)
            writer.apply_available()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_correction_posted_to_a_buffered_server_is_answered_while_the_writer_applies_ingest(
        configs: list[ProjectConfig], buffer_url: str, link: NatsLink) -> None:
    web = configs[0]
    with IdentityLedger(web.db) as ledger:
        glued_component(ledger)
    stop = threading.Event()
    writer = applying(web, link, stop)
    try:
        with open_projects(configs, buffer_url) as projects, running_app(create_app(projects)) as url:
            with SteadyUploads(url) as uploads:
                while len(uploads.acknowledged) < 30 and not uploads.refused:
                    stop.wait(0.01)  # the correction comes once ingest is under way
                reply = httpx.post(f"{url}/v1/corrections", auth=WEB, timeout=120,
                                   json={"user_id": "bad-user", "reason": REASON, "requester": "ops"})
    finally:
        stop.set()
        writer.join()
    assert reply.status_code == 200, reply.text
    assert not uploads.refused
    with IdentityLedger(web.db) as ledger:
        stored = [entry.insert_id for entry in ledger.events(limit=1_000_000)
                  if entry.insert_id and entry.insert_id.startswith("steady-")]
    assert sorted(stored) == sorted(set(uploads.acknowledged))
    with IdentityLedger(configs[1].db.replace("app.db", "quiet.db")) as quiet:
        glued_component(quiet)
        expected: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(
            quiet.retract_user_id("bad-user", reason=REASON, requester="ops")))
    answer = reply.json()["correction"]
    assert plain(answer) == plain(expected)
    assert answer["changes"]["people_after"] == DEVICES
