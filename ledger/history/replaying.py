"""Storing a history file's records in a ledger so that it holds the same people (docs/export.md).

Calls are stored at their recorded server upload time (deduplication and merge times follow from it),
consecutive calls of one upload time in one request; a correction is made again at its time; a
deletion record makes its shared devices point at a forgotten person again, as they did: a stand-in
user ID (`STAND_IN`) takes those devices and is forgotten at once, so their next anonymous event
starts a new person here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from ledger.errors import CorrectionRefused
from ledger.history.records import CALL, CORRECTION, checked, event_of

if TYPE_CHECKING:
    from ledger.ledger import IdentityLedger

#: Calls per request (the request limit).
BATCH = 2000
#: The user ID a deletion record's devices are given before it is forgotten, by the record's position.
STAND_IN = "ledger-history:forgotten:{position}"
_NOT_FOUND = 404


@dataclass
class Replayed:
    """What a replay stored: calls (and duplicates dropped), corrections made or skipped, deletions run."""

    calls: int = 0
    duplicates: int = 0
    corrections: int = 0
    #: Corrections of a user ID no remaining call carries (its people were forgotten since).
    corrections_skipped: int = 0
    deletions: int = 0
    position: int = 0


def replay(ledger: IdentityLedger, records: Iterable[dict[str, Any]]) -> Replayed:
    """Store the records in order; raises HistoryFormatError or the ledger's error at the first bad one
    (the records before it stay stored: a replay is resumed with `ledger export --since`'s records)."""
    done = Replayed()
    batch: list[dict[str, Any]] = []
    batch_time = -1

    def flush() -> None:
        if batch:
            report = ledger.ingest(batch, min_id_length=0, server_time=batch_time)
            done.calls += report.ingested
            done.duplicates += report.duplicates
            batch.clear()

    for row in records:
        record = checked(row)
        if record["record"] == CALL:
            if record["server_upload_time"] != batch_time or len(batch) == BATCH:
                flush()
                batch_time = record["server_upload_time"]
            batch.append(event_of(record))
            continue
        flush()
        if record["record"] == CORRECTION:
            _correct(ledger, record, done)
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


def _forget(ledger: IdentityLedger, record: dict[str, Any], done: Replayed) -> None:
    done.deletions += 1
    if not record["device_ids"]:
        return
    stand_in = STAND_IN.format(position=record["position"])
    ledger.ingest([{"event_type": "$identify", "device_id": device_id, "user_id": stand_in}
                   for device_id in record["device_ids"]], min_id_length=0, server_time=record["server_upload_time"])
    ledger.forget(user_ids=[stand_in], requester="ledger-history", now=True)
