"""`ledger feed`: every change reaches the JetStream stream exactly once, across a kill -9 of the feeder."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import nats
import pytest

from benchmarks.feed_faults import stored_count
from ledger import IdentityLedger
from ledger.history.feeding import POSITION_HEADER, FeedTarget, feed
from tests.cli_helpers import assert_one_line_error, ledger
from tests.export.test_changes import all_changes

NATS_URL = "nats://127.0.0.1:4222"


async def _messages(stream: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    connection = await nats.connect(NATS_URL)
    try:
        js = connection.jetstream()
        info = await js.stream_info(stream)
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg(stream, sequence)
            found.append((dict(message.headers or {}), msgspec.json.decode(message.data)))
        return found
    finally:
        await connection.close()


async def _delete(stream: str) -> None:
    connection = await nats.connect(NATS_URL)
    try:
        await connection.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await connection.close()


@pytest.fixture
def target() -> Iterator[FeedTarget]:
    """A private stream and subject on the local NATS, deleted afterwards."""
    name = f"test_feed_{uuid.uuid4().hex[:12]}"
    yield FeedTarget.of(NATS_URL, f"{name}.changes", name, "proj-1")
    asyncio.run(_delete(name))


def busy(lg: IdentityLedger, people: int) -> None:
    lg.ingest([{"device_id": f"device-{n:05}", "event_type": "view"} for n in range(people)])
    lg.ingest([{"device_id": f"device-{n:05}", "user_id": f"user-{n:05}", "event_type": "login"}
               for n in range(people)])
    lg.ingest([{"device_id": f"phone-{n:05}", "user_id": f"user-{n:05}", "event_type": "login"} for n in range(people)])


def test_each_change_is_one_message_with_its_id(lg: IdentityLedger, target: FeedTarget) -> None:
    busy(lg, 20)
    changes = all_changes(lg, 1000)
    assert feed(lg, target, drain=True) == len(changes)
    assert feed(lg, target, drain=True) == 0  # resumed after the last message: nothing again
    messages = asyncio.run(_messages(target.stream))
    assert [body["position"] for _, body in messages] == [change.position for change in changes]
    assert [headers["Nats-Msg-Id"] for headers, _ in messages] == [f"proj-1:{change.position}" for change in changes]
    assert [body for _, body in messages] == [msgspec.to_builtins(change) for change in changes]
    lg.ingest([{"device_id": "late-device", "event_type": "view"}])
    assert feed(lg, target, drain=True) == len(all_changes(lg, 1000)) - len(changes)


def test_a_killed_feeder_resumes_without_loss_or_repeat(lg: IdentityLedger, target: FeedTarget) -> None:
    busy(lg, 1500)
    changes = all_changes(lg, 1000)
    command = [sys.executable, "-c", "import sys; from ledger.cli import main; sys.exit(main())",
               "feed", "--db", lg.url, "--to", NATS_URL,
               "--subject", target.subject, "--stream", target.stream, "--project", target.project, "--drain"]
    environment = {**os.environ, "PYTHONPATH": os.getcwd()}
    feeder = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while asyncio.run(stored_count(NATS_URL, target.stream)) < 200:
        assert feeder.poll() is None and time.monotonic() < deadline, feeder.stderr.read() if feeder.stderr else ""
        time.sleep(0.05)
    feeder.send_signal(signal.SIGKILL)
    feeder.wait(30)
    published_before = asyncio.run(stored_count(NATS_URL, target.stream))
    assert published_before < len(changes), "the feeder finished before the kill: make the history longer"
    restarted = subprocess.run(command, env=environment, capture_output=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr
    positions = [body["position"] for _, body in asyncio.run(_messages(target.stream))]
    assert positions == [change.position for change in changes]  # each fact once, in order
    assert [headers[POSITION_HEADER] for headers, _ in asyncio.run(_messages(target.stream))] == list(map(str, positions))


def test_bad_targets_are_one_line_errors(capsys: pytest.CaptureFixture[str], lg: IdentityLedger) -> None:
    for arguments, words in ((["--to", "http://x:1", "--subject", "a.b"], "NATS URL"),
                             (["--to", NATS_URL, "--subject", "a b"], "subject"),
                             (["--to", NATS_URL, "--subject", "a.b", "--stream", "x.y"], "stream"),
                             (["--to", "nats://127.0.0.1:1", "--subject", "a.b"], "cannot feed")):
        assert_one_line_error(ledger(capsys, "feed", "--db", lg.url, *arguments), 2, words)


