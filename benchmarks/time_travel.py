"""`python -m benchmarks.time_travel`: what a past question costs now that the read side keeps its history.

Builds two SQLite ledgers from the same workload (`benchmarks.workload`), one `--events` long
and one ten times longer, then measures, each a median of `--samples` in this one run (and the same
again on PostgreSQL, one schema per ledger, with `--postgres URL` or `LEDGER_BENCH_POSTGRES_URL`):

- `as_of(p)` open + one resolve of a device it knows, half-way through each log, and the ratio long / short
  (target <= 1.5x: the cost must not grow with the log);
- a resolve inside a past view against a live resolve on the long log (target <= 3x), both the live
  resolve as the ledger answers it (from the write side's cache) and through the same SQL on the
  live tables (the `ReadModel`'s path);
- the read side's size on disk with and without its history tables (target <= 1.5x), from SQLite's
  `dbstat`, or PostgreSQL's `pg_total_relation_size` (indexes, TOAST and the dead rows of updates
  autovacuum has not reclaimed yet included; and again after `VACUUM FULL`, its live rows only);
- a rebuild against a raw scan of the same facts (read and decoded, not projected; target >= 0.5x);
- on SQLite, the SQL floor of the rebuild (`benchmarks.sql_floor`): the statements it sends, replayed
  through the bare driver, so a miss is shown to be the read side's shape or the code;
- with `LEDGER_BENCH_PREVIOUS` (or `--previous`) set to a checkout of the code before, ingest of this
  checkout against that one, interleaved, each in its own process (`benchmarks/contender.py`;
  target: no more than 5% slower), and the rebuild of what each ingested.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from benchmarks.databases import Databases, PostgresDatabases, SQLiteDatabases
from benchmarks.machine import describe
from benchmarks.results_file import write_section
from benchmarks.sql_floor import Statement, rebuild_statements, replay_rebuild
from benchmarks.versions import run_contender
from benchmarks.workload import DEFAULT_SEED, MIXES, Workload, requests
from ledger import IdentityLedger
from ledger.reads import LedgerView
from projections import tables as t

REPO = Path(__file__).resolve().parent.parent
REQUEST_SIZE = 100
#: This benchmark's section of RESULTS.md (`benchmarks.results_file`).
SECTION = "## Time travel"
#: A table's rows: (measure, first, second, ratio).
Row = tuple[str, str, str, str]


def build(url: str, key_file: Path, events: int) -> tuple[IdentityLedger, list[str]]:
    """A ledger of `events` workload events (requests of 100) and the device IDs it saw; its key file
    goes in the scratch folder (a PostgreSQL ledger's default is under the user's config)."""
    lg = IdentityLedger(url, key_file=str(key_file))
    devices: set[str] = set()
    for request in requests(Workload(DEFAULT_SEED, MIXES["default"]).events(events), REQUEST_SIZE):
        devices.update(event["device_id"] for event in request if event.get("device_id"))
        lg.ingest(request)
    return lg, sorted(devices)


def median_ms(samples: int, measure: Callable[[int], object]) -> float:
    times = []
    for sample in range(samples):
        started = time.perf_counter()
        measure(sample)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def known_devices(view: LedgerView, devices: list[str], samples: int, seed: int) -> list[str]:
    """Up to `samples` of `devices` the view knows, drawn at random (each then answers a person; one
    it does not know answers after one statement), without asking them all."""
    candidates = random.Random(seed).sample(devices, len(devices))
    return list(itertools.islice((device_id for device_id in candidates
                                  if view.resolve(device_id=device_id) is not None), samples))


def open_and_resolve(lg: IdentityLedger, devices: list[str], samples: int) -> float:
    position = lg.position // 2
    with lg.as_of(position) as view:
        chosen = known_devices(view, devices, samples, seed=1)

    def once(index: int) -> None:
        with lg.as_of(position) as view:
            view.resolve(device_id=chosen[index])

    return median_ms(len(chosen), once)


def resolves(lg: IdentityLedger, devices: list[str], samples: int) -> dict[str, float]:
    """A resolve in a past view, live from the cache, and live through the read API's SQL (ms, medians
    over the same devices: ones the past view knows, so each answers a person)."""
    with lg.as_of(lg.position // 2) as view:
        chosen = known_devices(view, devices, samples, seed=2)
        past = median_ms(len(chosen), lambda index: view.resolve(device_id=chosen[index]))
    live = median_ms(len(chosen), lambda index: lg.resolve(device_id=chosen[index]))
    live_sql = median_ms(len(chosen), lambda index: lg.read_model.resolve(device_id=chosen[index]))
    return {"past": past, "live": live, "live_sql": live_sql}


def table_bytes(lg: IdentityLedger) -> dict[str, int]:
    """Bytes of each table of the ledger's database, its indexes included."""
    store = lg._store
    with store.engine.connect() as connection:
        if store.backend.name == "postgresql":
            return dict(connection.execute(sa.text(
                "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
                "WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'")).all())
        owner: dict[str, str] = dict(connection.execute(sa.text("SELECT name, tbl_name FROM sqlite_master")).all())
        found: dict[str, int] = {}
        for name, size in connection.execute(sa.text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")):
            table = owner.get(name, name)
            found[table] = found.get(table, 0) + size
        return found


def vacuum_full(lg: IdentityLedger) -> None:
    """PostgreSQL: rewrite the projection tables with their live rows only, as a size without the dead
    rows of updates (on SQLite a page freed by an update is reused in place)."""
    names = ", ".join(table.name for table in t.PROJECTION_TABLES)
    with lg._store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text(f"VACUUM FULL {names}"))


def read_side_bytes(lg: IdentityLedger) -> dict[str, int]:
    """Bytes of the projection tables (with their indexes) and of the history tables."""
    history = {table.name for table in t.HISTORY_TABLES}
    current = {table.name for table in t.PROJECTION_TABLES} - history
    found = {"current": 0, "history": 0}
    for table, size in table_bytes(lg).items():
        if table in history:
            found["history"] += size
        elif table in current:
            found["current"] += size
    return found


def scan(lg: IdentityLedger) -> float:
    """Seconds of a raw scan of the identity facts: read and decoded, not projected."""
    stop = lg.position
    started = time.perf_counter()
    start = 0
    while True:
        facts = lg._context.log.read(start, stop, 20_000)
        if not facts:
            break
        start = facts[-1][0]
    return time.perf_counter() - started


def rebuild_against_scan(lg: IdentityLedger, repeats: int) -> tuple[dict[str, float], list[list[Statement]]]:
    """Median seconds of a raw scan of the identity facts and of a rebuild that projects them,
    interleaved; and the statements a rebuild sent, for its floor."""
    scans, rebuilds = [], []
    for _ in range(repeats):
        scans.append(scan(lg))
        seconds, sent = rebuild_statements(lg)
        rebuilds.append(seconds)
    return {"scan": statistics.median(scans), "rebuild": statistics.median(rebuilds)}, sent


def against_previous(previous: Path, folder: Path, events: int, runs: int) -> dict[str, dict[str, float]]:
    """Median seconds of ingesting the same events with this checkout and the previous one, interleaved in
    alternating order, then of rebuilding what each ingested (each version its own read side)."""
    seconds: dict[str, dict[str, list[float]]] = {"ingest": {"now": [], "previous": []},
                                                  "rebuild": {"now": [], "previous": []}}
    versions = (("now", REPO), ("previous", previous))
    for run in range(runs):  # ABBA: the order alternates, so neither version always runs after the other
        for version, checkout in versions if run % 2 == 0 else versions[::-1]:
            url = f"sqlite:///{folder}/ingest-{version}-{run}.db"
            ingested = run_contender(checkout, "ingest", url, str(events), str(REQUEST_SIZE), "1", "default")
            seconds["ingest"][version].append(ingested["seconds"])
            seconds["rebuild"][version].append(run_contender(checkout, "rebuild", url)["seconds"])
    return {what: {version: statistics.median(values) for version, values in by_version.items()}
            for what, by_version in seconds.items()}


def measure(databases: Databases, folder: Path, events: int, samples: int, repeats: int) -> list[Row]:
    """Every row but the ingest against the previous code, on ledgers from `databases`."""
    short, short_devices = build(databases.ledger_url("short"), folder / f"{databases.name}-short.key", events)
    long, long_devices = build(databases.ledger_url("long"), folder / f"{databases.name}-long.key", events * 10)
    rows: list[Row] = []
    try:
        opened = {size: open_and_resolve(lg, devices, samples)
                  for size, lg, devices in (("short", short, short_devices), ("long", long, long_devices))}
        rows.append(("as_of(p) open + one resolve", f"{opened['short']:.3f} ms ({short.position:,} positions)",
                     f"{opened['long']:.3f} ms ({long.position:,} positions)",
                     f"{opened['long'] / opened['short']:.2f}x long / short (target <= 1.5x)"))
        long_file = Path(sa.engine.make_url(long.url).database or "") if databases.name == "sqlite" else None
        resolved = resolves(long, long_devices, samples)
        rows.append(("resolve in a past view / live", f"{resolved['past']:.3f} ms past",
                     f"{resolved['live']:.3f} ms live (cache), {resolved['live_sql']:.3f} ms live (SQL)",
                     f"{resolved['past'] / resolved['live']:.1f}x cache, "
                     f"{resolved['past'] / resolved['live_sql']:.2f}x SQL (target <= 3x)"))
        size = read_side_bytes(long)
        rows.append(("read side on disk", f"{size['current'] / 2**20:.1f} MiB without history",
                     f"{(size['current'] + size['history']) / 2**20:.1f} MiB with",
                     f"{(size['current'] + size['history']) / size['current']:.2f}x (target <= 1.5x)"))
        if databases.name == "postgres":
            vacuum_full(long)
            live = read_side_bytes(long)
            rows.append(("its live rows: the same after VACUUM FULL", f"{live['current'] / 2**20:.1f} MiB without",
                         f"{(live['current'] + live['history']) / 2**20:.1f} MiB with",
                         f"{(live['current'] + live['history']) / live['current']:.2f}x (what autovacuum works toward)"))
        rebuilt, sent = rebuild_against_scan(long, repeats)
        rows.append(("rebuild / raw scan of the facts", f"{rebuilt['scan']:.2f} s scan",
                     f"{rebuilt['rebuild']:.2f} s rebuild",
                     f"{rebuilt['scan'] / rebuilt['rebuild']:.2f}x scan / rebuild (target >= 0.5x)"))
    finally:
        short.close()
        long.close()
    if long_file is not None:
        floor = rebuilt["scan"] + statistics.median(replay_rebuild(long_file, sent) for _ in range(repeats))
        rows.append(("its SQL floor: the scan + the rebuild's statements, replayed bare",
                     f"{rebuilt['scan']:.2f} s scan", f"{floor:.2f} s floor",
                     f"{rebuilt['scan'] / floor:.2f}x scan / floor (the most a rebuild of these rows can reach)"))
    return rows


def describe_server(url: str) -> str:
    """The PostgreSQL server's version, and whether autovacuum runs: without it a new ledger's tables are
    never analyzed and the planner guesses (`_KEY_LOOKUPS` in ledger/store/backends/postgres.py)."""
    engine = sa.create_engine(sa.engine.make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as connection:
            version = str(connection.execute(sa.text("SHOW server_version")).scalar()).split()[0]
            autovacuum = connection.execute(sa.text("SHOW autovacuum")).scalar()
    finally:
        engine.dispose()
    return f"{version}, autovacuum {autovacuum}"


def table(title: str, rows: list[Row]) -> list[str]:
    """A Markdown table of `rows` under its title."""
    return ["", f"### {title}", "", "| measure | first | second | ratio |", "|---|---|---|---|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_travel", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events in the short log (the long one: 10x)")
    parser.add_argument("--samples", type=int, default=200, help="samples per latency median")
    parser.add_argument("--runs", type=int, default=6, help="ingest runs per version (in alternating order)")
    parser.add_argument("--repeats", type=int, default=3, help="rebuilds, scans and floor replays (medians)")
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get("LEDGER_BENCH_POSTGRES_URL") or None,
                        help="also on PostgreSQL, a schema per ledger (default: $LEDGER_BENCH_POSTGRES_URL)")
    parser.add_argument("--previous", type=Path, default=os.environ.get("LEDGER_BENCH_PREVIOUS") or None,
                        help="a checkout of the code before (default: $LEDGER_BENCH_PREVIOUS)")
    parser.add_argument("--write-results", action="store_true",
                        help="also keep this report as the time-travel section of benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    machine = describe()
    tables: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-time-travel-") as name:
        folder = Path(name)
        sqlite = SQLiteDatabases(folder)
        try:
            tables[f"SQLite {machine['sqlite']}"] = sqlite_rows = measure(sqlite, folder, args.events, args.samples, args.repeats)
        finally:
            sqlite.close()
        if args.postgres:
            postgres = PostgresDatabases(args.postgres)
            try:
                tables[f"PostgreSQL {describe_server(args.postgres)} (a schema per ledger)"] = measure(
                    postgres, folder, args.events, args.samples, args.repeats)
            finally:
                postgres.close()
        if args.previous is not None:
            before = against_previous(Path(args.previous), folder, args.events, args.runs)
            ingest, rebuild = before["ingest"], before["rebuild"]
            sqlite_rows.append(("ingest (same events, 1 thread)", f"{ingest['now']:.2f} s now",
                                f"{ingest['previous']:.2f} s previous",
                                f"{ingest['now'] / ingest['previous']:.3f}x now / previous (target <= 1.05x)"))
            sqlite_rows.append(("rebuild of those ledgers", f"{rebuild['now']:.2f} s now",
                                f"{rebuild['previous']:.2f} s previous",
                                f"{rebuild['now'] / rebuild['previous']:.2f}x now / previous (the history's cost)"))
    lines = [f"{SECTION} (`python -m benchmarks.time_travel {' '.join(argv if argv is not None else sys.argv[1:])}`)",
             "", f"Run {started:%Y-%m-%d %H:%M} UTC in {time.monotonic() - clock:.0f} s.", "",
             f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['python']}, SQLite {machine['sqlite']}, "
             f"commit {machine['commit']}, load average at start {machine['load_average']}", "",
             f"events: {args.events:,} and {args.events * 10:,}; medians of {args.samples} samples; rebuilds, scans "
             f"and floor replays: medians of {args.repeats}; " + (
                 f"ingest: {args.runs} runs per version against {args.previous}" if args.previous is not None else
                 "ingest against the previous code skipped (set LEDGER_BENCH_PREVIOUS)")]
    for title, rows_of in tables.items():
        lines.extend(table(title, rows_of))
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write_results:
        write_section(SECTION, report)


if __name__ == "__main__":
    main()
