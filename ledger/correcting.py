"""Retracting a user ID: re-resolve the history it touched and record the outcome as new facts.

See docs/corrections.md. The people reachable from the user ID's person through shared devices
(`projections.component`) hold every call whose resolution could change; their calls are read
back from the log in arrival order, re-resolved without the retracted user IDs
(`ledger.domain.reresolution`), and the differences are stored in ONE transaction: the
correction, the amplitude IDs retired and made, the bindings and pointers moved, each call's new
attribution. Nothing stored is rewritten.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ledger.domain.calls import IDENTIFY, NUL, Call
from ledger.domain.model import AmplitudeIdentity, Cause, Correction, Device, User, amendment_fields, identity_key
from ledger.domain.properties import PropertyLimitExceeded
from ledger.domain.reresolution import Regrouping, StoredCall, regroup
from ledger.errors import CorrectionRefused
from ledger.store.unit_of_work import UnitOfWork
from ledger.store.writer import Transaction
from ledger.write_context import WriteContext, in_fresh_units
from projections import component
from projections.models import Correction as CorrectionAnswer
from projections.models import CorrectionChanges

#: Longest user ID a binding can hold (the projection's column), reason and requester stored.
MAX_USER_ID = 1024
MAX_REASON = 4096
MAX_REQUESTER = 1024
_CALL_TOPICS = ("Timeline.Tracked", "Timeline.Identified")
_PROPERTIES_UPDATED = AmplitudeIdentity.UserPropertiesUpdated.TOPIC
_CAUSE = ("device_id", "user_id", "event_time", "server_time", "insert_id")


def check_argument(field: str, value: Any, longest: int) -> str:
    """A non-empty string without NUL of at most `longest` characters, or a 400 naming `field`."""
    if not isinstance(value, str):
        raise CorrectionRefused.bad_argument(field, "must be a string")
    if not value.strip():
        raise CorrectionRefused.bad_argument(field, "must not be empty")
    if NUL in value:
        raise CorrectionRefused.bad_argument(field, "must not contain NUL")
    if len(value) > longest:
        raise CorrectionRefused.bad_argument(field, f"longer than {longest} characters")
    return value


class Corrector:
    """Makes corrections for one ledger, through its write context's transaction."""

    def __init__(self, context: WriteContext) -> None:
        self._context = context

    def retract(self, user_id: str, reason: str, requester: str, server_time: int) -> CorrectionAnswer:
        """Retract `user_id`; the caller holds the ledger's write lock."""
        check_argument("user_id", user_id, MAX_USER_ID)
        check_argument("reason", reason, MAX_REASON)
        check_argument("requester", requester, MAX_REQUESTER)

        def attempt(unit: UnitOfWork) -> CorrectionAnswer:
            self._context.follower.sync()  # the projections catch up here, outside the write turn
            planned: list[tuple[int, CorrectionChanges]] = []

            def plan(tx: Transaction) -> None:
                """Plan in the writer's turn: a call stored meanwhile (by any process) could belong to these
                people, so nobody stores one until the correction is stored (docs/corrections.md)."""
                seen = self._context.follow_in(tx)
                amplitude_id, calls, retracted = self._read(user_id, seen)
                try:
                    regrouping = regroup(calls, retracted, user_id)
                except PropertyLimitExceeded as error:
                    raise CorrectionRefused.property_limits(user_id, str(error)) from error
                planned.append((amplitude_id, _record(unit, regrouping, user_id, amplitude_id, reason, requester,
                                                      server_time)))

            self._context.commit(unit, plan, pipelined=False)
            amplitude_id, changes = planned[0]
            return CorrectionAnswer(position=unit.span[0], user_id=user_id, amplitude_id=amplitude_id, reason=reason,
                                    requester=requester, server_time=server_time, changes=changes)

        return in_fresh_units(self._context.cache, server_time, attempt)

    def _read(self, user_id: str, seen: int) -> tuple[int, list[StoredCall], set[str]]:
        """The amplitude ID `user_id` is bound to, the calls of everyone it touches, the user IDs retracted."""
        with self._context.store.engine.connect() as connection:
            amplitude_id = component.bound_amplitude_id(connection, user_id)
            if amplitude_id is None:
                if component.is_retracted(connection, user_id):
                    raise CorrectionRefused.already_retracted(user_id)
                raise CorrectionRefused.unknown_user_id(user_id)
            people = component.people_sharing_devices(connection, amplitude_id)
            person_of = {member: live for live, members in people.items() for member in members}
            if component.has_legacy_events(connection, person_of):
                raise CorrectionRefused.legacy_history(user_id)
            moved = component.reattributed_to(connection, person_of)
            log = self._context.log
            rows = log.calls_of(person_of, seen) + [row for row in log.at(moved) if row[2] in _CALL_TOPICS]
            rows.sort(key=lambda row: row[0])
            operations = self._operations([row[0] for row in rows])
            calls = [StoredCall(position, _call(fields, operations.get(position)), fields["server_time"],
                                moved.get(position, original), person_of[moved.get(position, original)],
                                position in moved)
                     for position, original, _, fields in rows]
            carried = {stored.call.user_id for stored in calls if stored.call.user_id is not None}
            retracted = component.retracted_among(connection, carried) | {user_id}
        return amplitude_id, calls, retracted

    def _operations(self, positions: list[int]) -> dict[int, dict[str, Any]]:
        """The user property operations of the calls at these positions.

        They are in the `UserPropertiesUpdated` fact the call caused, stored right before its
        timeline event (the rule records it last but for the event itself).
        """
        wanted = set(positions)
        found: dict[int, dict[str, Any]] = {}
        previous = [position - 1 for position in positions if position - 1 not in wanted]
        facts = {row[0]: row for row in self._context.log.at(previous) if row[2] == _PROPERTIES_UPDATED}
        calls = {row[0]: row for row in self._context.log.at([position + 1 for position in facts])}
        for position, (_, _, _, fields) in facts.items():
            call = calls.get(position + 1)
            if call is not None and all(call[3][name] == fields[name] for name in _CAUSE):
                found[position + 1] = fields["operations"]
        return found


def _call(fields: dict[str, Any], operations: dict[str, Any] | None) -> Call:
    """A stored call as it arrived (the stored user properties are results, the operations come apart;
    the groups it named are kept with it)."""
    return Call(device_id=fields["device_id"], user_id=fields["user_id"],
                event_type=fields.get("event_type", IDENTIFY), time=fields["event_time"],
                insert_id=fields["insert_id"], event_properties=fields.get("event_properties", {}),
                operations=operations or {}, groups=fields.get("groups", {}))


def _record(unit: UnitOfWork, regrouping: Regrouping, user_id: str, amplitude_id: int, reason: str,
            requester: str, server_time: int) -> CorrectionChanges:
    """Record the correction and the facts that set the new state, in that order, in `unit`."""
    people = regrouping.people
    _prefetch(unit, regrouping, user_id)
    final = [person.keeps if person.keeps is not None else unit.allocate() for person in people]
    split: dict[int, set[int]] = {}
    for number, person in enumerate(people):
        if person.keeps is None:
            for stored in person.calls:
                split.setdefault(stored.amplitude_id, set()).add(final[number])
    retired = [(member, unit.identity(member)) for live in regrouping.changed
               for member in [live, *(merged for merged in unit.identity(live).merged_amplitude_ids)]]
    bindings = {person.user_id: [_user(unit, person.user_id).amplitude_id, final[number]]
                for number, person in enumerate(people) if person.keeps is None and person.user_id is not None}
    devices: list[tuple[Device, int]] = []
    for device_id, number in regrouping.pointers.items():
        device = unit.device(device_id)
        if device is not None and device.pointer != final[number]:
            devices.append((device, final[number]))
    changes = CorrectionChanges(
        calls=sum(len(person.calls) for person in people),
        people_before=len({stored.person for person in people for stored in person.calls}),
        people_after=len(people),
        split={member: sorted(split.get(member, ())) for member, _ in retired},
        events_reattributed=sum(stored.tracked for person in people if person.keeps is None
                                for stored in person.calls),
        merges_undone={member: identity.merged_into for member, identity in retired
                       if identity.merged_into is not None},
        bindings_moved=bindings,
        pointers_moved=len(devices),
    )
    fields = amendment_fields(user_id, server_time)
    unit.add(Correction.retract(user_id, amplitude_id, reason, requester, server_time, _plain(changes)))
    for member, identity in retired:
        identity.trigger_event(AmplitudeIdentity.Retired, amplitude_id=member, user_id=identity.user_id,
                               merged_into=identity.merged_into, split_into=sorted(split.get(member, ())),
                               **fields)
    for number, person in enumerate(people):
        if person.keeps is None:
            calls = person.calls
            unit.add(AmplitudeIdentity._create(
                AmplitudeIdentity.SplitOff, id=identity_key(final[number]), amplitude_id=final[number],
                # Sorted: readers list devices linked at one position by device ID.
                user_id=person.user_id, device_ids=sorted(person.device_ids), user_properties=person.user_properties,
                split_from=sorted({stored.amplitude_id for stored in calls}),
                tracked=[stored.position for stored in calls if stored.tracked],
                identified=[stored.position for stored in calls if not stored.tracked],
                moved_before=[stored.position for stored in calls if stored.reattributed],
                **fields))
            # The memberships its calls made go with them (docs/rules.md, Groups): each call that named
            # groups joins them again, recorded at the correction's time (server times grow with the log).
            split_off = unit.identity(final[number])
            for call in person.joined:
                split_off.join_groups(call.groups, Cause(call.device_id, call.user_id, call.time, server_time,
                                                         call.insert_id))
    _user(unit, user_id).trigger_event(User.Retracted, user_id=user_id, amplitude_id=amplitude_id, **fields)
    for bound, (previous, new) in bindings.items():
        _user(unit, bound).trigger_event(User.Rebound, user_id=bound, amplitude_id=new, previous_amplitude_id=previous,
                                       **fields)
    for device, target in devices:
        device.trigger_event(Device.Repointed, device_id=device.device_id, amplitude_id=target,
                             previous_amplitude_id=device.pointer, **fields)
    return changes


def _prefetch(unit: UnitOfWork, regrouping: Regrouping, user_id: str) -> None:
    """Load every aggregate the correction changes in two bulk reads (one by one, they were most of its time)."""
    cache = unit.cache
    user_ids = {user_id, *(person.user_id for person in regrouping.people if person.user_id is not None)}
    cache.prefetch([*(("identity", live) for live in regrouping.changed),
                    *(("device", device_id) for device_id in regrouping.pointers),
                    *(("user", bound) for bound in user_ids)])
    cache.prefetch(("identity", merged) for live in regrouping.changed
                   for merged in cache.get(("identity", live)).merged_amplitude_ids)


def _user(unit: UnitOfWork, user_id: str) -> User:
    """A user ID a person of the component carries: bound, so its aggregate exists."""
    user = unit.user(user_id)
    if user is None:
        raise LookupError(f"user ID {user_id!r} is carried but was never bound")
    return user


def _plain(changes: CorrectionChanges) -> dict[str, Any]:
    """The changes as stored in the correction's fact (plain values; JSON-friendly keys)."""
    plain: dict[str, Any] = msgspec.to_builtins(changes, str_keys=True)
    return plain
