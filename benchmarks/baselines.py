"""The reference points the ledger is measured against, on the same events, in the same run.

- the physical limit: the calls msgpack-encoded as one row each and `executemany`'d
  into a table shaped like the ledger's event table, one transaction per 1000;
- the raw log scan: `SELECT` the ledger's own notification log in order and msgpack-decode
  every state, the least work any replay must do;
- the naive way: see `benchmarks.naive`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from uuid import NAMESPACE_URL, uuid5

import msgspec

from benchmarks.databases import LogRows, RawTable
from benchmarks.measure import Run
from benchmarks.workload import Event

TOPIC = "benchmarks.workload:Tracked"


def raw_insert(table: RawTable, requests: Iterable[list[Event]]) -> Run:
    """Encode and insert each request as one transaction; items are the events stored."""
    encode = msgspec.msgpack.Encoder().encode
    versions: dict[str, int] = {}
    connection, insert, originator_id = table.connection, table.insert_sql, table.originator_id
    stored = 0
    seconds = 0.0
    try:
        for request in requests:
            started = time.perf_counter()
            rows = []
            for event in request:
                device_id = event["device_id"]
                version = versions[device_id] = versions.get(device_id, 0) + 1
                rows.append((originator_id(uuid5(NAMESPACE_URL, device_id)), version, TOPIC, encode(event)))
            connection.cursor().executemany(insert, rows)
            connection.commit()
            seconds += time.perf_counter() - started
            stored += len(rows)
    finally:
        connection.close()
    return Run(stored, seconds)


def raw_scan(log_rows: LogRows) -> Run:
    """Read a notification log in order and decode every event state; items are the events read."""
    decode = msgspec.msgpack.Decoder().decode
    started = time.perf_counter()
    count = 0
    for rows in log_rows:
        for _position, _topic, state in rows:
            decode(state)
        count += len(rows)
    return Run(count, time.perf_counter() - started)
