"""A device ID's aggregate: its pointer, and the amplitude IDs it has used.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.facts import Amendment, Cause, Fact, JournaledAggregate

DEFAULT_DEDUP_WINDOW_MS = 7 * 24 * 3600 * 1000
#: How long a device remembers insert_ids: the longest duplicate window one may configure.
MAX_DEDUP_WINDOW_MS = 30 * 24 * 3600 * 1000


class Device(JournaledAggregate):
    """One device ID: its pointer (where the next anonymous event goes).

    Its stream holds only identity facts, so loading a device costs what its identity
    history costs, however many events it sends: tracked events and identify calls are
    stored on their amplitude ID's `Timeline` streams. Ledgers written by 0.1.0 kept them
    here (`Tracked`, `Identified`); those are still read, and their insert_ids still count
    as duplicates within the window.
    """

    STORED_AS = "Device"

    class Seen(Aggregate.Created, Fact):
        TOPIC = "Device.Seen"

        amplitude_id: int

        def apply(self, device: Device) -> None:
            device.device_id = self.device_id
            device.pointer = self.amplitude_id
            device.amplitude_ids.append(self.amplitude_id)

    class PointerMoved(Fact):
        TOPIC = "Device.PointerMoved"

        amplitude_id: int
        previous_amplitude_id: int

        def apply(self, device: Device) -> None:
            device.point_to(self.amplitude_id)

    class Tracked(Fact):
        """0.1.0's tracked event (read only): the event, stamped as in `Timeline.Tracked`."""

        TOPIC = "Device.Tracked"

        amplitude_id: int
        event_type: str
        event_properties: dict[str, Any]
        user_properties: dict[str, Any]

        def apply(self, device: Device) -> None:
            device.remember(self.insert_id, self.server_time)

    class Identified(Fact):
        """0.1.0's record of an identify call on this device (read only)."""

        TOPIC = "Device.Identified"

        amplitude_id: int

        def apply(self, device: Device) -> None:
            device.remember(self.insert_id, self.server_time)

    class Forgotten(Aggregate.Event):
        """Written in place of a forgotten person's 0.1.0 `Tracked`/`Identified` event on a device
        shared with someone else: the stream keeps its versions, the person's data is gone."""

        TOPIC = "Device.Forgotten"

        amplitude_id: int

        def apply(self, device: Device) -> None:
            pass

    class Repointed(Amendment):
        """A correction moved the pointer: the device's next anonymous event goes to `amplitude_id`."""

        TOPIC = "Device.Repointed"

        device_id: str
        amplitude_id: int
        previous_amplitude_id: int

        def apply(self, device: Device) -> None:
            device.point_to(self.amplitude_id)

    def __init__(self) -> None:
        super().__init__()
        self.device_id = ""
        self.pointer = 0
        self.amplitude_ids: list[int] = []
        #: insert_ids of 0.1.0's events on this stream (newer ones are in the store's receipts).
        self.recent_insert_ids: dict[str, int] = {}

    @classmethod
    def seen(cls, amplitude_id: int, cause: Cause, key: UUID) -> Device:
        """A new device; `key` is its stored ID (`Keys.device` of the device ID)."""
        return cls._create(cls.Seen, id=key, amplitude_id=amplitude_id, **cause.fields)

    def move_pointer(self, amplitude_id: int, cause: Cause) -> None:
        if amplitude_id != self.pointer:
            self.trigger_event(
                self.PointerMoved, amplitude_id=amplitude_id, previous_amplitude_id=self.pointer, **cause.fields
            )

    def point_to(self, amplitude_id: int) -> None:
        self.pointer = amplitude_id
        if amplitude_id not in self.amplitude_ids:
            self.amplitude_ids.append(amplitude_id)

    def remember(self, insert_id: str | None, server_time: int) -> None:
        if insert_id is not None:
            self.recent_insert_ids[insert_id] = server_time
