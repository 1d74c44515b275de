"""What each explorer page shows, gathered through the ledger's public read API only.

Every function takes a reader: the live ledger, or a read-only view of it as it stood at
some position (`IdentityLedger.as_of`); both answer the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.ledger import IdentityLedger, LedgerView
from ledger.server.explorer.drawing import Drawing, draw
from projections.graph import person_graph
from projections.models import AuditEntry, Identity, TimelineEvent

Reader = IdentityLedger | LedgerView

PAGE = 25  # timeline events per page
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Figures:
    events: int
    people: int
    identified_people: int
    devices: int
    merges: int
    position: int


def figures(read: Reader) -> Figures:
    """The ledger's counts; the one place that reads `stats()` fields."""
    stats = read.stats()
    return Figures(stats.events, stats.users, stats.identified_users, stats.devices, stats.merges, read.position)


@dataclass(frozen=True)
class Match:
    how: str  # "user ID", "device ID" or "amplitude ID"
    amplitude_id: int  # whose page to open: the live ID, or the amplitude ID exactly as searched
    identity: Identity


def matches(read: Reader, text: str) -> list[Match]:
    """Everyone `text` names as a user ID, a device ID or an amplitude ID (a user ID wins a tie)."""
    found: list[Match] = []
    for how, identity in (("user ID", read.resolve(user_id=text)), ("device ID", read.resolve(device_id=text))):
        if identity is not None:
            found.append(Match(how, identity.amplitude_id, identity))
    if text.isascii() and text.isdigit() and 0 < int(text) < 2**63:
        identity = read.identity(int(text))
        if identity is not None:
            found.append(Match("amplitude ID", int(text), identity))
    people: dict[int, Match] = {}
    for match in found:
        people.setdefault(match.identity.amplitude_id, match)
    return list(people.values())


@dataclass(frozen=True)
class Timeline:
    events: list[TimelineEvent]  # newest first
    total: int
    page: int
    first: int  # the 1-based rank of events[0], newest first

    @property
    def older(self) -> bool:
        return self.first - 1 + len(self.events) < self.total


@dataclass(frozen=True)
class Person:
    identity: Identity
    audit: list[AuditEntry]
    drawing: Drawing
    timeline: Timeline


@dataclass(frozen=True)
class MergedAway:
    """An amplitude ID that now counts as someone else: the merge fact says when and into whom."""

    amplitude_id: int
    identity: Identity
    merge: AuditEntry | None


def person(read: Reader, amplitude_id: int, page: int) -> Person | MergedAway | None:
    """The person page of `amplitude_id`, the notice of its merge, or None when the ledger has no such ID."""
    identity = read.identity(amplitude_id)
    if identity is None:
        return None
    audit = read.audit(amplitude_id=amplitude_id)
    if identity.amplitude_id != amplitude_id:
        merge = next((entry for entry in audit if entry.kind == "merged" and entry.amplitude_id == amplitude_id), None)
        return MergedAway(amplitude_id, identity, merge)
    newest = read.timeline(amplitude_id, newest_first=True, limit=page * PAGE)  # no cursor runs newest first
    timeline = Timeline(newest[(page - 1) * PAGE:], read.event_count(amplitude_id), page, (page - 1) * PAGE + 1)
    return Person(identity, audit, draw(person_graph(identity, audit)), timeline)


@dataclass(frozen=True)
class Steps:
    """The positions at which a person changed, to step through them with `as_of`."""

    changes: list[int]
    at: int | None  # the position shown; None for now

    @property
    def previous(self) -> int | None:
        earlier = [change for change in self.changes if self.at is None or change < self.at]
        return earlier[-1] if earlier else None

    @property
    def next(self) -> int | None:
        if self.at is None:
            return None
        return next((change for change in self.changes if change > self.at), None)


def steps(ledger: IdentityLedger, amplitude_id: int, at: int | None) -> Steps:
    """Every position at which the person holding `amplitude_id` changed, from the live audit trail."""
    return Steps(sorted({entry.position for entry in ledger.audit(amplitude_id=amplitude_id)}), at)
