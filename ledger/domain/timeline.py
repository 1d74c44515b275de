"""Timelines: what happened to one amplitude ID, stored once per call, never loaded as an aggregate."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate


class Timeline:
    """What happened to one amplitude ID: its tracked events and identify calls, in arrival order.

    Not an aggregate that is ever loaded: each amplitude ID has two append-only streams whose
    IDs are derived from the amplitude ID (`Timeline.stream`), so the store's own
    (originator_id, version) index is the person's timeline, a stream's last version is its
    event count, and a merge moves nothing (readers follow the merges table, as Amplitude does).
    Their state is the call alone: the amplitude ID is the stream's, and no `timestamp`.
    """

    STORED_AS = "Timeline"

    class Identified(Aggregate.Event):
        """An identify call went to this amplitude ID (kept so that retries are recognised)."""

        TOPIC = "Timeline.Identified"
        #: The high 64 bits of this stream kind's IDs (the low 64 are the amplitude ID).
        STREAM = 0x6964_656E_7469_6679  # "identify"

        device_id: str
        user_id: str | None
        event_time: int
        server_time: int
        insert_id: str | None

    class Tracked(Identified):
        """A counted event (a call like an identify call, plus the event), stamped with the user
        properties in force on arrival."""

        TOPIC = "Timeline.Tracked"
        STREAM = 0x7472_6163_6B65_6400  # "tracked"

        event_type: str
        event_properties: dict[str, Any]
        user_properties: dict[str, Any]

    @staticmethod
    def stream(kind: type[Any], amplitude_id: int) -> UUID:
        return UUID(int=(kind.STREAM << 64) | amplitude_id)

    @staticmethod
    def amplitude_id(stream: UUID) -> int:
        return stream.int & 0xFFFF_FFFF_FFFF_FFFF


def is_duplicate(last_received: int | None, server_time: int, window_ms: int) -> bool:
    """First write wins: a key (device ID, insert_id) stored within the window is a duplicate."""
    return last_received is not None and last_received >= server_time - window_ms
