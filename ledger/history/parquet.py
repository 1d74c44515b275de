"""Parquet tables for a warehouse (docs/export.md): events, device history, bindings, merges, corrections.

Written a row group at a time (`ROW_GROUP` rows), reading the log a page at a time, so memory stays
bounded by the page, the row group and one open pointer interval per device. The identity tables
come from the change feed (`ledger.history.changes`): one account of what happened, not a second one.
Needs pyarrow (`pip install 'identity-ledger[parquet]'`), imported only here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ledger.errors import LedgerError
from ledger.history.changes import BOUND, MERGED, POINTER_MOVED, Change

if TYPE_CHECKING:
    from ledger.ledger import IdentityLedger

ROW_GROUP = 50_000
PAGE = 10_000
INSTALL = "Parquet export needs pyarrow: pip install 'identity-ledger[parquet]'"
_json = msgspec.json.Encoder()


class ParquetUnavailable(LedgerError):
    """pyarrow is not installed; the message names the extra that brings it."""


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise ParquetUnavailable(INSTALL) from None
    return pa, pq


def _schemas(pa: Any) -> dict[str, Any]:
    time, text, whole = pa.timestamp("ms", tz="UTC"), pa.string(), pa.int64()
    return {
        "events": pa.schema([("position", whole), ("server_time", time), ("event_time", time), ("event_type", text),
                             ("device_id", text), ("user_id", text), ("insert_id", text), ("amplitude_id", whole),
                             ("person", whole), ("event_properties", text), ("user_properties", text),
                             ("groups", text), ("group_properties", text)]),
        "device_history": pa.schema([("device_id", text), ("amplitude_id", whole), ("valid_from_position", whole),
                                     ("valid_to_position", whole), ("valid_from_time", time), ("valid_to_time", time)]),
        "user_bindings": pa.schema([("user_id", text), ("amplitude_id", whole), ("previous_amplitude_id", whole),
                                    ("position", whole), ("server_time", time)]),
        "merges": pa.schema([("amplitude_id", whole), ("merged_into", whole), ("device_id", text), ("user_id", text),
                             ("position", whole), ("server_time", time), ("undone_by_correction", whole),
                             ("undone_server_time", time)]),
        "corrections": pa.schema([("position", whole), ("user_id", text), ("amplitude_id", whole), ("reason", text),
                                  ("requester", text), ("server_time", time), ("changes", text)]),
    }


class _Table:
    """One Parquet file, written under a scratch name a row group at a time and renamed when complete."""

    def __init__(self, pq: Any, pa: Any, path: Path, schema: Any) -> None:
        self._pa, self._schema, self._path = pa, schema, path
        self._scratch = path.with_name(path.name + ".partial")
        self._writer = pq.ParquetWriter(self._scratch, schema)
        self._rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        if len(self._rows) >= ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(self._pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()
        os.replace(self._scratch, self._path)


def _changes(lg: IdentityLedger, after: int, stop: int) -> Iterator[Change]:
    while (page := lg.changes(after, PAGE)).changes:
        for change in page.changes:
            if change.position > stop:
                return
            yield change
        after = page.next


def write_parquet(lg: IdentityLedger, out: Path, *, after: int, stop: int) -> None:
    """The five tables of the positions after < position <= stop, in `out` (made if absent)."""
    pa, pq = _pyarrow()
    out.mkdir(parents=True, exist_ok=True)
    tables = {name: _Table(pq, pa, out / f"{name}.parquet", schema) for name, schema in _schemas(pa).items()}
    _events(lg, tables["events"], after, stop)
    _identity_tables(lg, tables, after, stop)
    for correction in lg.corrections():
        if after < correction.position <= stop:
            tables["corrections"].add({
                "position": correction.position, "user_id": correction.user_id,
                "amplitude_id": correction.amplitude_id, "reason": correction.reason,
                "requester": correction.requester, "server_time": correction.server_time,
                "changes": _json.encode(correction.changes).decode()})
    for table in tables.values():
        table.close()


def _events(lg: IdentityLedger, table: _Table, after: int, stop: int) -> None:
    while page := lg.events(after=after, limit=PAGE):
        for event in page:
            if event.position > stop:
                return
            table.add({"position": event.position, "server_time": event.server_time, "event_time": event.time,
                       "event_type": event.event_type, "device_id": event.device_id, "user_id": event.user_id,
                       "insert_id": event.insert_id, "amplitude_id": event.original_amplitude_id,
                       "person": event.amplitude_id, "event_properties": _json.encode(event.event_properties).decode(),
                       "user_properties": _json.encode(event.user_properties).decode(),
                       "groups": _json.encode(event.groups).decode(),
                       "group_properties": _json.encode(event.group_properties).decode()})
        after = page[-1].position


def _identity_tables(lg: IdentityLedger, tables: dict[str, _Table], after: int, stop: int) -> None:
    """device_history from the pointer changes (an interval closes at the device's next one), bindings, merges."""
    undone = {merge.amplitude_id: merge.undone_server_time for merge in lg.merges()
              if merge.undone_server_time is not None}
    correction_at = {correction.server_time: correction.position for correction in lg.corrections()}
    current: dict[str, dict[str, Any]] = {}
    for change in _changes(lg, after, stop):
        if change.kind == POINTER_MOVED and change.device_id is not None:
            previous = current.pop(change.device_id, None)
            if previous is not None:
                tables["device_history"].add({**previous, "valid_to_position": change.position,
                                              "valid_to_time": change.server_time})
            current[change.device_id] = {"device_id": change.device_id, "amplitude_id": change.amplitude_id,
                                         "valid_from_position": change.position, "valid_to_position": None,
                                         "valid_from_time": change.server_time, "valid_to_time": None}
        elif change.kind == BOUND:
            tables["user_bindings"].add({"user_id": change.user_id, "amplitude_id": change.amplitude_id,
                                         "previous_amplitude_id": change.other_amplitude_id,
                                         "position": change.position, "server_time": change.server_time})
        elif change.kind == MERGED:
            undone_time = undone.get(change.amplitude_id or 0)
            tables["merges"].add({"amplitude_id": change.amplitude_id, "merged_into": change.other_amplitude_id,
                                  "device_id": change.device_id, "user_id": change.user_id,
                                  "position": change.position, "server_time": change.server_time,
                                  "undone_by_correction": correction_at.get(undone_time or -1),
                                  "undone_server_time": undone_time})
    for row in current.values():
        tables["device_history"].add(row)
