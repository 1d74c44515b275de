"""Reading the log into history records, in ledger order, a page at a time (memory: one page, and
one pointer per device for the deletions' records).

A call's user property operations are in the `UserPropertiesUpdated` fact it caused, stored right
before its timeline event with the same call fields (the resolution rule records it last but for the
event itself). A group's property changes and user mappings are records of their own; every other
identity fact follows from the calls, corrections and mappings, so it is not written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.domain.deletions import DeletionJob
from ledger.domain.model import AmplitudeIdentity, Correction, Device, Group, UserMapping
from ledger.domain.timeline import Timeline
from ledger.history.records import call_record, correction_record, forgotten_record, group_identify_record, mapping_record
from ledger.store.event_log import EventLog

PAGE = 5_000
_CALLS = (Timeline.Tracked.TOPIC, Timeline.Identified.TOPIC, Device.Tracked.TOPIC, Device.Identified.TOPIC)
_PROPERTIES_UPDATED = AmplitudeIdentity.UserPropertiesUpdated.TOPIC
_POINTERS = (Device.Seen.TOPIC, Device.PointerMoved.TOPIC, Device.Repointed.TOPIC)
_CAUSE = ("device_id", "user_id", "event_time", "server_time", "insert_id")


class HistoryWriter:
    """Turns log rows into records; keeps what a later row needs (the last operations, device pointers)."""

    def __init__(self) -> None:
        self._operations: tuple[int, dict[str, Any]] | None = None
        #: device ID -> the amplitude ID its pointer is at (devices of forgotten people alone are deleted).
        self._pointers: dict[str, int] = {}

    def follow(self, topic: str, fields: dict[str, Any]) -> None:
        """Keep the device pointers of a fact before the exported range (no record is written)."""
        if topic in _POINTERS:
            self._pointers[fields["device_id"]] = fields["amplitude_id"]

    def records(self, position: int, original: int, topic: str, fields: dict[str, Any]) -> Iterator[dict[str, Any]]:
        operations, self._operations = self._operations, None
        if topic in _CALLS:
            sent: dict[str, Any] = {}
            if operations is not None and operations[0] == position - 1 and all(
                    operations[1][name] == fields[name] for name in _CAUSE):
                sent = operations[1]["operations"]
            yield call_record(position, original, fields, sent)
        elif topic == _PROPERTIES_UPDATED:
            self._operations = (position, fields)
        elif topic == Correction.Retracted.TOPIC:
            yield correction_record(position, fields)
        elif topic == Group.PropertiesUpdated.TOPIC:
            yield group_identify_record(position, fields)
        elif topic in (UserMapping.Mapped.TOPIC, UserMapping.Unmapped.TOPIC):
            # On the mapped user ID's stream; its counterpart's Gained/Lost say the same. A fact naming
            # a forgotten person was deleted or rewritten as `UserMapping.Erased` (never written here).
            yield mapping_record(position, fields, unmap=topic == UserMapping.Unmapped.TOPIC)
        elif topic == DeletionJob.Ran.TOPIC:
            forgotten = set(fields["forgotten"])
            shared = sorted(device_id for device_id, pointer in self._pointers.items() if pointer in forgotten)
            yield forgotten_record(position, fields["server_time"], fields["forgotten"], shared)
        self.follow(topic, fields)


def history(log: EventLog, *, after: int = 0, stop: int, page: int = PAGE) -> Iterator[dict[str, Any]]:
    """The records of the positions after < position <= stop, in ledger order."""
    writer = HistoryWriter()
    start = 0
    while start < after:  # the device pointers as they stood at `after` (identity facts only)
        facts = log.read(start, after, page)
        if not facts:
            break
        for _, topic, fields in facts:
            writer.follow(topic, fields)
        start = facts[-1][0]
    for position, original, topic, fields in log.at([after] if after else []):
        list(writer.records(position, original, topic, fields))  # a call after `after` may need its operations
    while rows := log.page(after=after, stop=stop, limit=page):
        for position, original, topic, fields in rows:
            yield from writer.records(position, original, topic, fields)
        after = rows[-1][0]
