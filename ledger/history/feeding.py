"""`ledger feed`: the change feed published to a NATS JetStream stream, each fact exactly once.

Each change is one message, `Nats-Msg-Id` = "PROJECT:POSITION" (JetStream stores a retried one once)
and `Ledger-Position` = its position. A feeder that starts (again, after a crash or kill -9) resumes
after the position of the stream's last message on its subject, so a fact is neither lost nor
published twice: whatever was acknowledged is in the stream, and what was not is sent again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec
import nats
import nats.errors
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.ledger import IdentityLedger

POSITION_HEADER = "Ledger-Position"
PAGE = 500
#: Seconds between looks at the ledger once the feed has caught up.
IDLE = 0.2
#: How long JetStream remembers a Nats-Msg-Id.
DUPLICATE_WINDOW_S = 15 * 60
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SUBJECT = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_encode = msgspec.json.Encoder().encode


class BadFeedTarget(LedgerError, ValueError):
    """`--to`, `--subject`, `--stream` or `--project` cannot name a feed; the message says why."""


@dataclass(frozen=True)
class FeedTarget:
    server: str
    subject: str
    stream: str
    project: str

    @classmethod
    def of(cls, to: str, subject: str, stream: str | None, project: str) -> FeedTarget:
        if urlsplit(to).scheme not in ("nats", "tls") or not urlsplit(to).hostname:
            raise BadFeedTarget(f"not a NATS URL: {to!r} (use nats://HOST:PORT)")
        if not _SUBJECT.match(subject):
            raise BadFeedTarget(f"bad subject {subject!r}: use dot-separated letters, digits, - or _")
        stream = stream or "LEDGER_FEED_" + subject.replace(".", "_")
        for name, value in (("stream", stream), ("project", project)):
            if not _NAME.match(value):
                raise BadFeedTarget(f"bad {name} {value!r}: use 1-64 letters, digits, - or _")
        return cls(to, subject, stream, project)


async def _resume_after(js: nats.js.JetStreamContext, target: FeedTarget) -> int:
    """The position of the stream's last message on the subject, 0 if none (creating the stream if absent)."""
    try:
        await js.stream_info(target.stream)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=target.stream, subjects=[target.subject], storage=StorageType.FILE,
                                         duplicate_window=DUPLICATE_WINDOW_S))
        return 0
    try:
        last = await js.get_last_msg(target.stream, target.subject)
    except NotFoundError:
        return 0
    return int((last.headers or {}).get(POSITION_HEADER, 0))


async def _feed(ledger: IdentityLedger, target: FeedTarget, drain: bool, published: Callable[[int], None]) -> int:
    connection = await nats.connect(servers=[target.server], connect_timeout=5, max_reconnect_attempts=3,
                                    reconnect_time_wait=0.25)
    try:
        js = connection.jetstream()
        after = await _resume_after(js, target)
        sent = 0
        while True:
            page = await asyncio.to_thread(ledger.changes, after, PAGE)
            for change in page.changes:
                await js.publish(target.subject, _encode(change), timeout=10, headers={
                    "Nats-Msg-Id": f"{target.project}:{change.position}", POSITION_HEADER: str(change.position)})
                sent += 1
                published(change.position)
            after = page.next
            if not page.changes:
                if drain:
                    return sent
                await asyncio.sleep(IDLE)
    finally:
        await connection.close()


def feed(ledger: IdentityLedger, target: FeedTarget, *, drain: bool = False,
         published: Callable[[int], None] = lambda _: None) -> int:
    """Publish every change after the stream's last one; with `drain`, return (how many) once caught up."""
    try:
        return asyncio.run(_feed(ledger, target, drain, published))
    except (nats.errors.Error, OSError) as error:
        raise LedgerError(f"cannot feed NATS at {target.server}: {error or type(error).__name__}") from error
