"""The `Correction` aggregate: one retraction of a user ID, its reason, requester and effect (docs/corrections.md).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from ledger.domain.facts import JournaledAggregate, stamp
from ledger.domain.keys import NAMESPACE


class Correction(JournaledAggregate):
    """One retraction of a user ID (docs/corrections.md): who asked, why, when, and what it changed.

    Its ID derives from the retracted user ID, so retracting one twice collides in the store.
    """

    STORED_AS = "Correction"

    class Retracted(Aggregate.Created):
        TOPIC = "Correction.Retracted"

        user_id: str
        amplitude_id: int
        reason: str
        requester: str
        server_time: int
        summary: dict[str, Any]

    @classmethod
    def retract(cls, user_id: str, amplitude_id: int, reason: str, requester: str, server_time: int,
                summary: dict[str, Any]) -> Correction:
        return cls._create(cls.Retracted, id=correction_key(user_id), user_id=user_id, amplitude_id=amplitude_id,
                           reason=reason, requester=requester, server_time=server_time, summary=summary,
                           timestamp=stamp(server_time))


def correction_key(user_id: str) -> UUID:
    return uuid5(NAMESPACE, "correction:" + user_id)
