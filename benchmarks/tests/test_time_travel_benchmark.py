"""`python -m benchmarks.time_travel` on tiny logs: it builds, measures and reports every row (no timings asserted)."""

from __future__ import annotations

import os

import psycopg
import pytest

from benchmarks.time_travel import main
from tests.conftest import BACKENDS, POSTGRES_URL

ROWS = ["as_of(p) open + one resolve", "resolve in a past view / live", "read side on disk",
        "its live rows: the same after VACUUM FULL", "rebuild / raw scan of the facts"]
#: SQLite's table also shows the SQL floor of the rebuild (`benchmarks.sql_floor`).
SQLITE_ROWS = ["as_of(p) open + one resolve", "resolve in a past view / live", "read side on disk",
               "rebuild / raw scan of the facts", "its SQL floor: the scan + the rebuild's statements, replayed bare"]


def _tables(out: str) -> dict[str, list[str]]:
    """Each printed table's rows, by the title above it."""
    tables: dict[str, list[str]] = {}
    title = ""
    for line in out.splitlines():
        if line and not line.startswith("|"):
            title = line
        elif line.startswith("| ") and not line.startswith("| measure"):
            tables.setdefault(title, []).append(line)
    return tables


def _measured(rows: list[str], names: list[str]) -> None:
    assert [row.split(" | ")[0].strip("| ") for row in rows] == names
    assert all(row.rstrip(" |").split(" | ")[-1][0].isdigit() for row in rows)  # each ends with its ratio


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tiny_run_reports_each_measure_and_drops_its_schemas(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, backend: str) -> None:
    """SQLite always gets a table; PostgreSQL a second one of its own, its schemas dropped afterwards."""
    monkeypatch.delenv("LEDGER_BENCH_PREVIOUS", raising=False)
    monkeypatch.delenv("LEDGER_BENCH_POSTGRES_URL", raising=False)
    url = POSTGRES_URL if backend == "postgres" else None
    postgres = ["--postgres", url] if url else []
    main(["--events", "300", "--samples", "5", "--repeats", "1", *postgres])
    out = capsys.readouterr().out
    assert "ingest against the previous code skipped" in out
    tables = _tables(out)
    assert [title.split()[1] for title in tables] == ["SQLite", "PostgreSQL"][:1 + len(postgres) // 2]
    for rows, names in zip(tables.values(), (SQLITE_ROWS, ROWS), strict=False):
        _measured(rows, names)
    if url:
        with psycopg.connect(url) as connection:
            left = connection.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                      (f"bench_{os.getpid()}_%",)).fetchall()
        assert left == []
