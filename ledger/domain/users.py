"""A user ID's aggregate: its binding to one amplitude ID, made once (and, since corrections, retracted or re-bound).
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from ledger.domain.facts import Amendment, Cause, Fact, JournaledAggregate, RuleViolation


class User(JournaledAggregate):
    """A user ID's binding to one amplitude ID. Created once: a second creation collides in the store."""

    STORED_AS = "User"

    class Bound(Aggregate.Created, Fact):
        """The call's user ID is bound to `amplitude_id`, forever."""

        TOPIC = "User.Bound"

        amplitude_id: int

        def apply(self, user: User) -> None:
            user.user_id = self.user_id or ""
            user.amplitude_id = self.amplitude_id

    class Retracted(Amendment):
        """A correction retracted this user ID: calls carrying it are resolved as if it were absent."""

        TOPIC = "User.Retracted"

        user_id: str
        amplitude_id: int

        def apply(self, user: User) -> None:
            user.retracted = True

    class Rebound(Amendment):
        """A correction re-resolved this user ID's person: it is bound to `amplitude_id` from now on."""

        TOPIC = "User.Rebound"

        user_id: str
        amplitude_id: int
        previous_amplitude_id: int

        def apply(self, user: User) -> None:
            user.amplitude_id = self.amplitude_id

    #: Whether a correction retracted this user ID (a class default: users loaded from old logs have it).
    retracted = False

    def __init__(self) -> None:
        super().__init__()
        self.user_id = ""
        self.amplitude_id = 0

    @classmethod
    def bind(cls, amplitude_id: int, cause: Cause, key: UUID) -> User:
        """Bind the calling user ID to `amplitude_id`; `key` is its stored ID (`Keys.user` of the user ID)."""
        if cause.user_id is None:
            raise RuleViolation("only a call with a user ID can bind one")
        return cls._create(cls.Bound, id=key, amplitude_id=amplitude_id, **cause.fields)
