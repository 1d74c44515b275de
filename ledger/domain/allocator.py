"""The amplitude ID allocator: consecutive, unique across writers, never reused.
"""

from __future__ import annotations

from uuid import uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.facts import JournaledAggregate, stamp
from ledger.domain.keys import NAMESPACE

ALLOCATOR_KEY = uuid5(NAMESPACE, "amplitude-ids")


class AmplitudeIds(JournaledAggregate):
    """The allocator: each request that creates identities reserves its IDs here.

    Reserving in the same transaction as the request makes amplitude IDs consecutive
    in arrival order, unique across writer processes (a concurrent reservation
    collides on this aggregate's version and is retried), and never reused.
    """

    STORED_AS = "AmplitudeIds"

    class Started(Aggregate.Created):
        TOPIC = "AmplitudeIds.Started"

        next_amplitude_id: int

        def apply(self, allocator: AmplitudeIds) -> None:
            allocator.next_amplitude_id = self.next_amplitude_id

    class Reserved(Aggregate.Event):
        TOPIC = "AmplitudeIds.Reserved"

        next_amplitude_id: int

        def apply(self, allocator: AmplitudeIds) -> None:
            allocator.next_amplitude_id = self.next_amplitude_id

    def __init__(self) -> None:
        super().__init__()
        self.next_amplitude_id = 1

    @classmethod
    def start(cls, server_time: int) -> AmplitudeIds:
        return cls._create(cls.Started, id=ALLOCATOR_KEY, next_amplitude_id=1, timestamp=stamp(server_time))

    def reserve(self, count: int, server_time: int) -> None:
        self.trigger_event(self.Reserved, next_amplitude_id=self.next_amplitude_id + count,
                           timestamp=stamp(server_time))
