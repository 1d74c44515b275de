"""Erasing people from the log, inside one write transaction (see docs/privacy.md).

The log is append-only for everything but this: a deletion job removes or rewrites, in place,
every stored row that holds a forgotten person's data, so nothing of it can be read back.

- the person's Timeline streams (tracked events, identify calls) and their insert-ID receipts;
- the User streams of their user IDs: the keyed stored ID then links to nothing, and a later
  call with that user ID binds anew;
- Device streams used by nobody else; on a device shared with someone else, the person's
  events are rewritten without their user ID and insert_id (0.1.0's tracked events become
  `Device.Forgotten`), so the stream keeps its versions and the device its pointer;
- the UserMapping stream of their user ID; on the streams of the user IDs it was mapped with,
  the facts naming it become `UserMapping.Erased` (the versions stay, nothing names them);
- each Identity stream becomes one tombstone (`Identity.Forgotten`) at its first event's place,
  so positions, replay and `as_of` stay consistent.

A person a correction split off (docs/corrections.md) also has history on the amplitude IDs it
was split from: those retired IDs hold its earlier identity facts, and their Timeline streams its
calls (re-attributed by position). They are forgotten with it: tombstoned like its own IDs, and
on their Timeline streams exactly the calls now attributed to a forgotten person are deleted, so
the people split off the same ID who stay keep every call of theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec

from ledger.domain.keys import Keys
from ledger.domain.model import AmplitudeIdentity, Device, UserMapping, identity_key
from ledger.domain.timeline import Timeline
from ledger.store.database import canonical_topic, decode_event, decode_state
from ledger.store.writer import RECEIPTS, Transaction

_encode = msgspec.msgpack.Encoder().encode
#: Device facts rewritten without the person's IDs; 0.1.0's tracked events and identify records are replaced.
_REDACTED = (Device.Seen.TOPIC, Device.PointerMoved.TOPIC)
#: Pointer moves: their audit rows stay (a correction's `Repointed` names no user ID or insert_id to rewrite).
_MOVES = (Device.PointerMoved.TOPIC, Device.Repointed.TOPIC)
_REPLACED = (Device.Tracked.TOPIC, Device.Identified.TOPIC)
#: (position, version, topic as stored, state)
StoredRow = tuple[int, int, str, bytes]
#: The read side's answer, in the open transaction: whom each of these calls (positions) is attributed
#: to now, for those a correction re-attributed (`projections.erasure.attributions`).
Attributions = Callable[[Transaction, list[int]], dict[int, int]]


@dataclass
class Erased:
    """What a job erased, for the read side (no personal data leaves this transaction's memory)."""

    #: Every amplitude ID forgotten: each person's live one, then those merged into it.
    amplitude_ids: list[int] = field(default_factory=list)
    #: Device IDs whose stream was deleted (the read side deletes their rows too).
    devices: list[str] = field(default_factory=list)
    #: Positions of pointer moves on shared devices, kept without the person's user ID and insert_id.
    redacted: list[int] = field(default_factory=list)
    #: Positions of retracted user IDs' bindings, rewritten without the binding call's device ID and insert_id.
    unbound: list[int] = field(default_factory=list)


class _Streams:
    """Reads, rewrites and deletes stored streams through one open write transaction (no rule of erasure here)."""

    def __init__(self, tx: Transaction, keys: Keys, events_table: str) -> None:
        self._tx = tx
        self._keys = keys
        self._table = events_table
        self._position = tx.backend.position

    def _id(self, stream: UUID) -> Any:
        return self._tx.backend.stream_id(stream)

    def rows(self, stream: UUID) -> list[StoredRow]:
        return [(row[0], row[1], row[2], bytes(row[3])) for row in self._tx.query(
            f"SELECT {self._position}, originator_version, topic, state FROM {self._table} "
            "WHERE originator_id = ? ORDER BY originator_version", (self._id(stream),))]

    def events(self, stream: UUID) -> list[Any]:
        return [decode_event(topic, state, stream, version) for _, version, topic, state in self.rows(stream)]

    def load(self, stream: UUID) -> Any:
        aggregate = None
        for event in self.events(stream):
            aggregate = event.mutate(aggregate)
        return aggregate

    def identity(self, amplitude_id: int) -> AmplitudeIdentity | None:
        identity: AmplitudeIdentity | None = self.load(identity_key(amplitude_id))
        return identity

    def delete(self, stream: UUID, after_version: int = 0) -> None:
        self._tx.execute(f"DELETE FROM {self._table} WHERE originator_id = ? AND originator_version > ?",
                         (self._id(stream), after_version))

    def rewrite(self, stream: UUID, version: int, topic: str, fields: dict[str, Any]) -> None:
        self._tx.execute(f"UPDATE {self._table} SET topic = ?, state = ? WHERE originator_id = ? "
                         "AND originator_version = ?", (topic, _encode(fields), self._id(stream), version))

    def forget_receipts(self, rows: list[StoredRow]) -> None:
        receipts = []
        for _, _, topic, state in rows:
            fields = decode_state(topic, state)
            if fields["insert_id"] is not None:
                receipts.append((self._keys.receipt(fields["device_id"], fields["insert_id"]),))
        self._tx.executemany(f"DELETE FROM {RECEIPTS} WHERE key = ?", receipts)

    def delete_positions(self, positions: list[int]) -> None:
        self._tx.executemany(f"DELETE FROM {self._table} WHERE {self._position} = ?", [(position,) for position in positions])


class Eraser:
    """Erases people from the log as a deletion job asks: what goes, what is rewritten, what stays."""

    def __init__(self, tx: Transaction, keys: Keys, events_table: str, attributions: Attributions) -> None:
        self._tx = tx
        self._keys = keys
        self._attributions = attributions
        self._log = _Streams(tx, keys, events_table)

    def person(self, amplitude_id: int) -> list[int]:
        """The whole person an amplitude ID belongs to, live one first; [] if unknown or forgotten.

        A correction may have retired the amplitude ID since the job was asked for: it is nobody's now
        (its calls belong to the people split off it). The person is then the one its user ID is bound
        to now (a correction re-binds a user ID it did not retract); a retracted or absent user ID names nobody.
        """
        identity = self._log.identity(amplitude_id)
        if identity is not None and identity.retired:
            user = self._log.load(self._keys.user(identity.user_id)) if identity.user_id is not None else None
            identity = None if user is None or user.retracted else self._log.identity(user.amplitude_id)
        if identity is not None and identity.merged_into is not None:
            identity = self._log.identity(identity.merged_into)
        if identity is None or identity.forgotten:
            return []
        return [identity.amplitude_id, *identity.merged_amplitude_ids]

    def erase(self, requested: Iterable[int], job_day: str) -> Erased:
        """Erase every person of `requested` (amplitude IDs, live or merged) as they are now."""
        erased = Erased()
        for amplitude_id in requested:
            if amplitude_id not in erased.amplitude_ids:
                erased.amplitude_ids.extend(self.person(amplitude_id))
        identities = [identity for identity in map(self._log.identity, erased.amplitude_ids) if identity is not None]
        identities += self._retired_ancestors(identities, erased)
        forgotten = set(erased.amplitude_ids)
        devices = list(dict.fromkeys(device_id for identity in identities for device_id in identity.device_ids))
        for identity in identities:
            if identity.retired:
                self._erase_calls_of(forgotten, identity.amplitude_id)
                if identity.user_id is not None:
                    self._unbind_retracted(identity.user_id, erased)
                continue
            if identity.user_id is not None:
                self._log.delete(self._keys.user(identity.user_id))
                self._erase_mappings(identity.user_id)
            self._erase_timelines(identity.amplitude_id)
        for device_id in devices:
            self._erase_device(device_id, forgotten, erased)
        for identity in identities:
            self._tombstone(identity.amplitude_id, job_day)
        return erased

    def _retired_ancestors(self, identities: list[AmplitudeIdentity], erased: Erased) -> list[AmplitudeIdentity]:
        """The retired amplitude IDs the people were split off from, and theirs, recursively."""
        found: list[AmplitudeIdentity] = []
        waiting = [ancestor for identity in identities for ancestor in identity.split_from]
        while waiting:
            amplitude_id = waiting.pop()
            ancestor = self._log.identity(amplitude_id)
            if ancestor is None or ancestor.forgotten or amplitude_id in erased.amplitude_ids:
                continue
            erased.amplitude_ids.append(amplitude_id)
            found.append(ancestor)
            waiting.extend(ancestor.split_from)
        return found

    def _unbind_retracted(self, user_id: str, erased: Erased) -> None:
        """A retracted user ID's binding was made by a call now someone else's, maybe the person's:
        the stream stays (the user ID stays retracted), the call's device ID and insert_id go."""
        stream = self._keys.user(user_id)
        rows = self._log.rows(stream)
        user = self._log.load(stream)
        if user is None or not user.retracted:
            return  # a user ID the correction re-bound: its binding call is its own person's
        position, version, topic, state = rows[0]
        self._log.rewrite(stream, version, topic, {**decode_state(topic, state), "device_id": "", "insert_id": None})
        erased.unbound.append(position)

    def _erase_mappings(self, user_id: str) -> None:
        """Delete the user ID's mapping stream, and erase the facts naming it on its counterparts' streams."""
        stream = self._keys.mapping(user_id)
        named = ("global_user_id", "mapped_user_id")
        counterparts = {fields[key] for fields in (decode_state(topic, state) for _, _, topic, state in self._log.rows(stream))
                        for key in named if key in fields}
        self._log.delete(stream)
        for other in counterparts:
            other_stream = self._keys.mapping(other)
            for _, version, topic, state in self._log.rows(other_stream):
                fields = decode_state(topic, state)
                if any(fields.get(key) == user_id for key in named):
                    self._log.rewrite(other_stream, version, UserMapping.Erased.TOPIC, {"timestamp": fields["timestamp"]})

    def _erase_timelines(self, amplitude_id: int) -> None:
        for kind in (Timeline.Tracked, Timeline.Identified):
            stream = Timeline.stream(kind, amplitude_id)
            self._log.forget_receipts(self._log.rows(stream))
            self._log.delete(stream)

    def _erase_calls_of(self, forgotten: set[int], retired: int) -> None:
        """On a retired amplitude ID's Timeline streams, delete the calls now attributed to forgotten people."""
        for kind in (Timeline.Tracked, Timeline.Identified):
            rows = self._log.rows(Timeline.stream(kind, retired))
            owners = self._attributions(self._tx, [row[0] for row in rows]) if rows else {}
            doomed = [row for row in rows if owners.get(row[0], retired) in forgotten]
            self._log.forget_receipts(doomed)
            self._log.delete_positions([row[0] for row in doomed])

    def _erase_device(self, device_id: str, forgotten: set[int], erased: Erased) -> None:
        stream = self._keys.device(device_id)
        rows = [(position, version, canonical_topic(topic), decode_state(topic, state))
                for position, version, topic, state in self._log.rows(stream)]
        others = {fields["amplitude_id"] for _, _, _, fields in rows} - forgotten
        if not any(self._in_use(amplitude_id, forgotten) for amplitude_id in others):
            self._log.delete(stream)
            erased.devices.append(device_id)
            return
        for position, version, topic, fields in rows:
            if fields["amplitude_id"] not in forgotten:
                continue
            if topic in _REDACTED:
                self._log.rewrite(stream, version, topic, {**fields, "user_id": None, "insert_id": None})
            elif topic in _REPLACED:
                self._log.rewrite(stream, version, Device.Forgotten.TOPIC,
                                  {"amplitude_id": fields["amplitude_id"], "timestamp": fields["timestamp"]})
            if topic in _MOVES:
                erased.redacted.append(position)

    def _in_use(self, amplitude_id: int, forgotten: set[int]) -> bool:
        """Whether an amplitude ID belongs to someone staying: a live one not forgotten (now or earlier), or
        a retired one a correction split into someone staying (its history on the device is theirs)."""
        if amplitude_id in forgotten:
            return False
        events = self._log.events(identity_key(amplitude_id))
        identity: AmplitudeIdentity | None = None
        for event in events:
            identity = event.mutate(identity)
        if identity is None or identity.forgotten:
            return False
        if not identity.retired:
            return True
        return any(self._in_use(heir, forgotten) for event in events
                   if isinstance(event, AmplitudeIdentity.Retired) for heir in event.split_into)

    def _tombstone(self, amplitude_id: int, job_day: str) -> None:
        stream = identity_key(amplitude_id)
        first = self._log.rows(stream)[0]
        timestamp = decode_state(first[2], first[3])["timestamp"]
        self._log.rewrite(stream, 1, AmplitudeIdentity.Forgotten.TOPIC,
                      {"originator_topic": AmplitudeIdentity.STORED_AS, "timestamp": timestamp,
                       "amplitude_id": amplitude_id, "job_day": job_day})
        self._log.delete(stream, after_version=1)
