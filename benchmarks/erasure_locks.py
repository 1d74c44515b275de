"""What erasing a person from PostgreSQL's files costs (docs/privacy.md): the rewrite's lock times.

    LEDGER_BENCH_POSTGRES_URL=postgresql://... python -m benchmarks.erasure_locks [EVENTS] [REPEATS]

A deletion job ends with `VACUUM FULL` of every table it changed: each table is rewritten, one
at a time, under its ACCESS EXCLUSIVE lock (no read, no write of that table meanwhile), and the
ledger's writer (ingest) waits for the whole job. This ingests EVENTS (`benchmarks.workload`,
requests of 1000) once, then REPEATS times forgets one more person and measures, medians:

- the whole job (`forget(..., now=True)`): how long ingest waits;
- in the same state, each table's `VACUUM FULL` on its own (the longest is the longest lock),
  against plain `VACUUM` of the same tables (what the job ran before, which left the person's
  bytes in free space: the baseline, measured in the same run).

Default 20,000 events, 3 repeats: seconds. 1,000,000 is the figure docs/privacy.md quotes.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import sqlalchemy as sa

from benchmarks.workload import Workload, requests
from ledger import IdentityLedger

REQUEST = 1000


def _tables(connection: sa.Connection, schema: str) -> list[tuple[str, int]]:
    """The schema's tables with their total size (heap, indexes, TOAST), largest first."""
    return [(name, int(size)) for name, size in connection.execute(sa.text(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind = 'r' "
        "ORDER BY 2 DESC, 1"), {"schema": schema})]


def _timed(connection: sa.Connection, statement: str) -> float:
    started = time.perf_counter()
    connection.execute(sa.text(statement))
    return time.perf_counter() - started


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    postgres = os.environ.get("LEDGER_BENCH_POSTGRES_URL")
    if not postgres:
        sys.exit("set LEDGER_BENCH_POSTGRES_URL (the rewrite is PostgreSQL's; SQLite's job is in benchmarks.privacy)")
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="bench-erasure-"))  # the key file
    schema = f"bench_erasure_{os.getpid()}"
    lg = IdentityLedger(f"{postgres}{'&' if '?' in postgres else '?'}schema={schema}")
    engine = lg._store.engine
    try:
        users: dict[str, None] = {}
        started = time.perf_counter()
        for batch in requests(Workload().events(count), REQUEST):
            lg.ingest(batch)
            users.update((event["user_id"], None) for event in batch if event.get("user_id"))
        ingest = time.perf_counter() - started
        user_ids = list(users)
        people = [user_ids[len(user_ids) * n // repeats] for n in range(repeats)]  # spread over the log
        jobs: list[float] = []
        full: dict[str, list[float]] = {}
        plain: dict[str, list[float]] = {}
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for user_id in people:
                started = time.perf_counter()
                lg.forget(user_ids=[user_id], requester="benchmark", now=True)
                jobs.append(time.perf_counter() - started)
                tables = _tables(connection, schema)
                for name, _ in tables:
                    plain.setdefault(name, []).append(_timed(connection, f'VACUUM "{schema}"."{name}"'))
                    full.setdefault(name, []).append(_timed(connection, f'VACUUM FULL "{schema}"."{name}"'))
        sizes = dict(tables)
    finally:
        lg.close()
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
    print(f"# benchmarks.erasure_locks: {count:,} events ({count / ingest:,.0f} events/s ingested), "
          f"medians of {len(jobs)} jobs of one person\n")
    print("| table | size | VACUUM FULL (lock held) | plain VACUUM (before) | full / plain |\n|---|---|---|---|---|")
    for name, size in sorted(sizes.items(), key=lambda item: -item[1]):
        rewrite, vacuum = statistics.median(full[name]), statistics.median(plain[name])
        print(f"| {name} | {size / 2**20:,.1f} MiB | {rewrite * 1000:,.1f} ms | {vacuum * 1000:,.1f} ms | "
              f"{rewrite / vacuum:.1f}x |")
    total_full = sum(statistics.median(times) for times in full.values())
    total_plain = sum(statistics.median(times) for times in plain.values())
    longest = max(statistics.median(times) for times in full.values())
    print(f"\nOne job, all in (ingest waits this long): {statistics.median(jobs) * 1000:,.0f} ms. "
          f"Every table rewritten: {total_full * 1000:,.0f} ms in all, the longest single lock "
          f"{longest * 1000:,.0f} ms; plain VACUUM of the same tables: {total_plain * 1000:,.0f} ms. "
          f"Rewrite rate: {sum(sizes.values()) / 2**20 / total_full:,.0f} MiB/s, "
          f"{total_full / count * 1e6:,.1f} s per million events if it grew linearly.")


if __name__ == "__main__":
    main()
