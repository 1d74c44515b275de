"""The identity model: devices, user-ID bindings, identities (amplitude IDs), the allocator, corrections.

One module per aggregate (`devices`, `users`, `identities`, `allocator`, `correction`; what they
share is in `facts`); this module names them together and makes every stored name resolvable.
The aggregates guard their own invariants (a binding is made once, only anonymous identities are
merged, ...); `ledger.domain.resolution` decides which commands a call issues.
"""

from __future__ import annotations

from ledger.domain.allocator import ALLOCATOR_KEY, AmplitudeIds
from ledger.domain.correction import Correction, correction_key
from ledger.domain.devices import DEFAULT_DEDUP_WINDOW_MS, MAX_DEDUP_WINDOW_MS, Device
from ledger.domain.facts import Amendment, Cause, Fact, JournaledAggregate, RuleViolation, amendment_fields, register_topics
from ledger.domain.groups import Group
from ledger.domain.identities import AmplitudeIdentity, IdentityFact, identity_key
from ledger.domain.mappings import UserMapping
from ledger.domain.timeline import Timeline
from ledger.domain.users import User

__all__ = [
    "ALLOCATOR_KEY", "DEFAULT_DEDUP_WINDOW_MS", "MAX_DEDUP_WINDOW_MS", "Amendment", "AmplitudeIdentity", "AmplitudeIds",
    "Cause", "Correction", "Device", "Fact", "Group", "IdentityFact", "JournaledAggregate", "RuleViolation", "Timeline",
    "User", "UserMapping",
    "amendment_fields", "correction_key", "identity_key", "register_topics",
]

register_topics(Device, User, AmplitudeIdentity, AmplitudeIds, Timeline, Correction, Group, UserMapping)
