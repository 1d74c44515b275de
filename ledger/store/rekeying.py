"""`ledger rekey`: a ledger written before keyed IDs gets a secret, and its stored keys are rewritten.

Ledgers written before erasure existed keep 0.1.0's unkeyed keys (`uuid5` of the IDs: guessable).
Rekeying creates the ledger's key file, then, in ONE write transaction, gives every Device and User
stream its keyed ID (positions and versions unchanged), rewrites every insert-ID receipt key, and
stores the key check. Nothing else changes: the projections hold the IDs themselves, not keys.
"""

from __future__ import annotations

from uuid import UUID

from ledger.domain.keys import UNKEYED, Keys
from ledger.domain.model import Device, User
from ledger.domain.timeline import Timeline
from ledger.store import settings
from ledger.store.database import decode_state
from ledger.store.writer import RECEIPTS, Transaction

_FIRST_EVENTS = {Device.Seen.TOPIC: ("device_id", "device"), User.Bound.TOPIC: ("user_id", "user")}


def rekey(tx: Transaction, keys: Keys, events_table: str) -> int:
    """Rewrite the stored keys under `keys`; returns how many streams got a new ID."""
    topics = [*_FIRST_EVENTS, *("ledger.domain:" + topic for topic in _FIRST_EVENTS)]
    rows = tx.query(f"SELECT originator_id, topic, state FROM {events_table} WHERE originator_version = 1 "
                      f"AND topic IN ({', '.join('?' * len(topics))})", topics)
    moved = 0
    for originator_id, topic, state in rows:
        field, kind = _FIRST_EVENTS[topic.removeprefix("ledger.domain:")]
        value = decode_state(topic, bytes(state))[field]
        new: UUID = getattr(keys, kind)(value)
        tx.execute(f"UPDATE {events_table} SET originator_id = ? WHERE originator_id = ?",
                   (tx.backend.stream_id(new), originator_id))
        moved += 1
    _rekey_receipts(tx, keys, events_table)
    tx.execute(f"INSERT INTO {settings.SETTINGS} (name, value) VALUES (?, ?)", (settings.KEY_CHECK, keys.check()))
    return moved


def _rekey_receipts(tx: Transaction, keys: Keys, events_table: str) -> None:
    """Every receipt key, recomputed from the timelines' (device ID, insert_id) pairs."""
    topics = (Timeline.Tracked.TOPIC, Timeline.Identified.TOPIC)
    pairs = {(fields["device_id"], fields["insert_id"]) for fields in (
        decode_state(topic, bytes(state)) for topic, state in tx.query(
            f"SELECT topic, state FROM {events_table} WHERE topic IN (?, ?)", topics))
        if fields["insert_id"] is not None}
    tx.executemany(f"UPDATE {RECEIPTS} SET key = ? WHERE key = ?",
                   [(keys.receipt(device_id, insert_id), UNKEYED.receipt(device_id, insert_id))
                    for device_id, insert_id in pairs])
