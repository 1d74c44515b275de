"""How to append a request's rows on PostgreSQL: the measurement behind `ledger.store.writer`.

    python -m benchmarks.postgres_insert postgresql://postgres@127.0.0.1:5432/test [ROWS_PER_COMMIT] [COMMITS]

Each variant appends the same rows (the shape of eventsourcing's events table: uuid key,
version, topic, msgpack state, bigserial position) one commit per request into a fresh
table, under `LOCK TABLE ... IN EXCLUSIVE MODE` as the ledger does; medians of 3
interleaved repeats. Variants: psycopg `executemany` (what eventsourcing's recorder
does), one multi-row `INSERT ... SELECT FROM unnest(...)`, `COPY`, and the unnest insert
followed by a `NOTIFY` (which eventsourcing issues in every insert transaction).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

TABLE = "bench_append"
COLUMNS = "originator_id, originator_version, topic, state"


def _rows(count: int, offset: int) -> list[tuple[Any, ...]]:
    return [(uuid.uuid4(), 1, "Timeline.Tracked", os.urandom(150)) for _ in range(offset, offset + count)]


def _executemany(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    cursor.executemany(f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s) RETURNING notification_id",
                       rows, returning=True)


def _unnest(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    ids, versions, topics, states = zip(*rows, strict=True)
    cursor.execute(f"INSERT INTO {TABLE} ({COLUMNS}) SELECT * FROM unnest(%s::uuid[], %s::bigint[], "
                   "%s::text[], %s::bytea[]) RETURNING notification_id",
                   (list(ids), list(versions), list(topics), list(states)))
    cursor.fetchall()


def _copy(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {TABLE} ({COLUMNS}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(f"SELECT MAX(notification_id) FROM {TABLE}")  # positions follow from the last, under the lock
    cursor.fetchall()


def _unnest_notify(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    _unnest(cursor, rows)
    cursor.execute(f"NOTIFY {TABLE}")


VARIANTS: dict[str, Callable[[Any, list[tuple[Any, ...]]], None]] = {
    "executemany (eventsourcing's way)": _executemany,
    "INSERT ... SELECT FROM unnest": _unnest,
    "COPY": _copy,
    "unnest + NOTIFY": _unnest_notify,
}


def measure(url: str, per_commit: int, commits: int) -> dict[str, float]:
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with psycopg.connect(url) as connection:
        for _ in range(3):
            for name, append in VARIANTS.items():
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
                    cursor.execute(f"CREATE TABLE {TABLE} (originator_id uuid NOT NULL, originator_version bigint "
                                   "NOT NULL, topic text, state bytea, notification_id bigserial, "
                                   "PRIMARY KEY (originator_id, originator_version))")
                    cursor.execute(f"CREATE UNIQUE INDEX ON {TABLE} (notification_id)")
                connection.commit()
                batches = [_rows(per_commit, n * per_commit) for n in range(commits)]
                started = time.perf_counter()
                for rows in batches:
                    with connection.cursor() as cursor:
                        cursor.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
                        append(cursor, rows)
                    connection.commit()
                rates[name].append(per_commit * commits / (time.perf_counter() - started))
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        connection.commit()
    return {name: statistics.median(found) for name, found in rates.items()}


def main() -> None:
    url = sys.argv[1]
    per_commit = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    commits = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    for name, rate in measure(url, per_commit, commits).items():
        print(f"{name:40s} {rate:12,.0f} rows/s  ({per_commit} rows per commit)")


if __name__ == "__main__":
    main()
