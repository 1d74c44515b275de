"""Ping a pooled connection before use only when it sat idle: a connection dropped by a server restart or an
idle timeout shows up there, and one used a moment ago is as good as a ping.

SQLAlchemy's `pool_pre_ping` pings at every checkout: on PostgreSQL a round trip per read question, as
much as the question's own statement (a past resolve at 1M events: one statement and that ping). A
connection that fails its ping is replaced before the question runs (SQLAlchemy retries the checkout
on `DisconnectionError`); one dropped within `PING_IDLE_S` of its last use fails that one question
with the driver's error, and the pool replaces it.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

#: A connection idle longer than this (seconds since it went back to the pool) is pinged when taken.
PING_IDLE_S = 1.0
_RETURNED = "returned_at"


def ping_when_idle(engine: sa.Engine) -> None:
    """Install the idle ping on `engine`'s pool (made without `pool_pre_ping`)."""
    dialect = engine.dialect

    def returned(_: Any, record: Any) -> None:
        record.info[_RETURNED] = time.monotonic()

    def taken(dbapi_connection: Any, record: Any, _: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED, 0.0) <= PING_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise sa.exc.DisconnectionError(f"a pooled connection failed its ping: {error}") from error

    sa.event.listen(engine, "connect", returned)  # a new connection needs no ping
    sa.event.listen(engine, "checkin", returned)
    sa.event.listen(engine, "checkout", taken)
