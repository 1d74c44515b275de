"""Storing a history file's records in a ledger so that it holds the same people (docs/export.md).

Calls are stored at their recorded server upload time (deduplication and merge times follow from it),
consecutive calls of one upload time in one request, and so are group identifications; a correction,
a mapping or an unmapping is made again at its time; a deletion record makes its shared devices point
at a forgotten person again, as they did: a stand-in user ID (`STAND_IN`) takes those devices and is
forgotten at once, so their next anonymous event starts a new person here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.errors import CorrectionRefused
from ledger.history.records import CALL, CORRECTION, GROUP_IDENTIFY, MAPPING, checked, event_of, identification_of

if TYPE_CHECKING:
    from ledger.ledger import IdentityLedger

#: Calls (or group identifications) per request (the request limit).
BATCH = 2000
#: The user ID a deletion record's devices are given before it is forgotten, by the record's position.
STAND_IN = "ledger-history:forgotten:{position}"
_NOT_FOUND = 404
_BATCHED = (CALL, GROUP_IDENTIFY)


@dataclass
class Replayed:
    """What a replay stored: calls (and duplicates dropped), corrections made or skipped, deletions run,
    group identifications, mappings and unmappings."""

    calls: int = 0
    duplicates: int = 0
    corrections: int = 0
    #: Corrections of a user ID no remaining call carries (its people were forgotten since).
    corrections_skipped: int = 0
    deletions: int = 0
    position: int = 0
    group_identifications: int = 0
    mappings: int = 0
    unmappings: int = 0


def replay(ledger: IdentityLedger, records: Iterable[dict[str, Any]]) -> Replayed:
    """Store the records in order; raises HistoryFormatError or the ledger's error at the first bad one
    (the records before it stay stored: a replay is resumed with `ledger export --since`'s records)."""
    done = Replayed()
    batch: list[dict[str, Any]] = []
    batch_of = ("", -1)  # the kind and upload time of the batch's records

    def flush() -> None:
        if not batch:
            return
        if batch_of[0] == CALL:
            report = ledger.ingest(batch, min_id_length=0, server_time=batch_of[1])
            done.calls += report.ingested
            done.duplicates += report.duplicates
        else:
            ledger.group_identify(batch, server_time=batch_of[1])
            done.group_identifications += len(batch)
        batch.clear()

    for row in records:
        record = checked(row)
        kind = record["record"]
        if kind in _BATCHED:
            if (kind, record["server_upload_time"]) != batch_of or len(batch) == BATCH:
                flush()
                batch_of = (kind, record["server_upload_time"])
            batch.append(event_of(record) if kind == CALL else identification_of(record))
            continue
        flush()
        if kind == CORRECTION:
            _correct(ledger, record, done)
        elif kind == MAPPING:
            _map(ledger, record, done)
        else:
            _forget(ledger, record, done)
    flush()
    done.position = ledger.position
    return done


def _correct(ledger: IdentityLedger, record: dict[str, Any], done: Replayed) -> None:
    try:
        ledger.retract_user_id(record["user_id"], reason=record["reason"], requester=record["requester"],
                               server_time=record["server_upload_time"])
    except CorrectionRefused as error:
        if error.status != _NOT_FOUND:
            raise
        done.corrections_skipped += 1
    else:
        done.corrections += 1


def _map(ledger: IdentityLedger, record: dict[str, Any], done: Replayed) -> None:
    """An unmapping undoes the user ID's mapping (its `global_user_id` says onto which one it was)."""
    mapping = ({"user_id": record["user_id"], "unmap": True} if record["unmap"]
               else {"user_id": record["user_id"], "global_user_id": record["global_user_id"]})
    report = ledger.map_users([mapping], requester=record["requester"], server_time=record["server_upload_time"])
    done.mappings += report.mapped
    done.unmappings += report.unmapped


def _forget(ledger: IdentityLedger, record: dict[str, Any], done: Replayed) -> None:
    done.deletions += 1
    if not record["device_ids"]:
        return
    stand_in = STAND_IN.format(position=record["position"])
    ledger.ingest([{"event_type": "$identify", "device_id": device_id, "user_id": stand_in}
                   for device_id in record["device_ids"]], min_id_length=0, server_time=record["server_upload_time"])
    ledger.forget(user_ids=[stand_in], requester="ledger-history", now=True)
