"""Which ledger position a past question means: a position as given, or the last call at or before a time.

A time means the state after the last call stored at or before it (its server time). Server
times grow with the log (they are the clock's reading when a request is stored, and requests
are stored in order), so the position is found by bisecting the log: a few index lookups,
whatever its length.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from ledger.errors import OutsideTheLedger

#: A past position, or an aware datetime.
AsOf = int | dt.datetime


class TimedLog(Protocol):
    def first_time(self, start: int, stop: int) -> tuple[int, int] | None: ...


def past_position(as_of: AsOf, latest: int, now_ms: int, log: TimedLog) -> int:
    """The position `as_of` names in a ledger standing at `latest`; OutsideTheLedger if none."""
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise OutsideTheLedger.because("a time needs a time zone (e.g. 2026-12-07T10:00:00Z)")
        try:
            time_ms = int(as_of.timestamp() * 1000)
        except (OverflowError, ValueError):
            raise OutsideTheLedger.because("time out of range") from None
        if time_ms > now_ms:
            raise OutsideTheLedger.because(f"{as_of.isoformat()} is in the future")
        return position_at(log, time_ms, latest)
    if isinstance(as_of, bool) or not isinstance(as_of, int):
        raise OutsideTheLedger.because("give a position (an integer) or an aware datetime")
    if as_of < 0:
        raise OutsideTheLedger.because("a position is >= 0")
    if as_of > latest:
        raise OutsideTheLedger.because(f"position {as_of} is past the end of the ledger ({latest})")
    return as_of


def position_at(log: TimedLog, time_ms: int, latest: int) -> int:
    """The end of the request of the last call stored at or before `time_ms` (0: before the first call).

    The bookkeeping a request stores after its calls (amplitude IDs reserved) has no server time:
    it belongs to that request, up to the next call's position.
    """
    low, high = 0, latest  # the last call at or before the time lies in [low, high]
    while low < high:
        middle = (low + high + 1) // 2
        found = log.first_time(middle, high)
        if found is not None and found[1] <= time_ms:
            low = found[0]
        else:
            high = middle - 1
    if low == 0:
        return 0
    after = log.first_time(low + 1, latest)
    return latest if after is None else after[0] - 1


def parse_as_of(text: str) -> AsOf:
    """A position (digits) or an ISO-8601 time, as the CLI and the HTTP API take them."""
    if text.isdigit() and text.isascii():
        return int(text)
    try:
        if not (text.isascii() and text.isprintable()):
            raise ValueError(text)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise OutsideTheLedger.because("give a position (an integer) or an ISO-8601 time with a time zone") \
            from None
