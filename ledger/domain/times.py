"""Time, said once: the ledger keeps integer milliseconds since the Unix epoch, in UTC.

Every conversion between that and a clock, a `datetime` or a time string lives here, so
"naive means UTC" and the millisecond arithmetic cannot drift apart between modules.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def now_ms() -> int:
    """The wall clock in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def to_datetime(ms: int) -> datetime:
    """Milliseconds since the epoch as an aware UTC datetime (exact: no float on the way)."""
    return EPOCH + timedelta(milliseconds=ms)


def from_iso(text: str) -> int:
    """An ISO-8601 time (naive means UTC) as milliseconds since the epoch; ValueError if it is not one."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // MILLISECOND


def format_ms(ms: int, pattern: str) -> str:
    """Milliseconds since the epoch as UTC text in a `strftime` pattern."""
    return to_datetime(ms).strftime(pattern)
