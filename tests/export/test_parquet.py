"""`ledger export --format parquet`: typed tables a warehouse (here DuckDB) reads, the same facts as the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ledger import IdentityLedger
from ledger.history import parquet
from tests.cli_helpers import ledger
from tests.export.test_export_cli import history


def undone_merge(lg: IdentityLedger) -> None:
    """A merge a correction undid: the shared login is retracted."""
    lg.ingest([{"device_id": "kiosk-99", "event_type": "view"},
               {"device_id": "phone-99", "user_id": "shared-login", "event_type": "view"}])
    lg.ingest([{"device_id": "kiosk-99", "user_id": "shared-login", "event_type": "login"}])
    lg.retract_user_id("shared-login", reason="a shared login")


def export(capsys: pytest.CaptureFixture[str], lg: IdentityLedger, out: Path, *options: str) -> Path:
    assert ledger(capsys, "export", "--db", lg.url, "--format", "parquet", "--out", str(out), *options).code == 0
    return out


def sql(query: str, out: Path) -> list[tuple]:
    return duckdb.sql(query.replace("{out}", str(out))).fetchall()


def test_events_carry_both_amplitude_ids_and_typed_columns(capsys: pytest.CaptureFixture[str], lg: IdentityLedger,
                                                            tmp_path: Path) -> None:
    history(lg)
    out = export(capsys, lg, tmp_path / "warehouse")
    expected = [(event.position, event.original_amplitude_id, event.amplitude_id, event.event_type, event.device_id)
                for event in lg.events(limit=10_000)]
    assert sql("SELECT position, amplitude_id, person, event_type, device_id FROM '{out}/events.parquet' "
               "ORDER BY position", out) == expected
    types = dict(sql("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{out}/events.parquet')", out))
    assert types["position"] == "BIGINT" and types["server_time"].startswith("TIMESTAMP WITH TIME ZONE")
    assert sql("SELECT json_extract(user_properties, '$.plan') FROM '{out}/events.parquet' "
               "WHERE event_type = 'view' ORDER BY position LIMIT 1", out) == [('"free"',)]


def test_events_carry_their_groups_and_the_group_properties_of_their_time(
        capsys: pytest.CaptureFixture[str], lg: IdentityLedger, tmp_path: Path) -> None:
    lg.group_identify([{"group_type": "org", "group_value": "acme", "group_properties": {"plan": "free"}}])
    lg.ingest([{"device_id": "phone-1", "event_type": "view", "groups": {"org": "acme"}}])
    lg.group_identify([{"group_type": "org", "group_value": "acme", "group_properties": {"plan": "pro"}}])
    lg.ingest([{"device_id": "phone-1", "event_type": "view", "groups": {"org": "acme"}},
               {"device_id": "phone-1", "event_type": "view"}])
    out = export(capsys, lg, tmp_path / "warehouse")
    assert sql("SELECT groups, json_extract_string(group_properties, '$.org.acme.plan') FROM '{out}/events.parquet' "
               "ORDER BY position", out) == [('{"org":["acme"]}', "free"), ('{"org":["acme"]}', "pro"), ("{}", None)]


def test_device_history_chains_the_pointer_moves(capsys: pytest.CaptureFixture[str], lg: IdentityLedger,
                                                 tmp_path: Path) -> None:
    history(lg)
    out = export(capsys, lg, tmp_path / "warehouse")
    rows = sql("SELECT device_id, amplitude_id, valid_from_position, valid_to_position FROM "
               "'{out}/device_history.parquet' ORDER BY device_id, valid_from_position", out)
    by_device: dict[str, list[tuple]] = {}
    for row in rows:
        by_device.setdefault(row[0], []).append(row)
    assert "phone-22" not in by_device  # forgotten with its person
    for device_id, intervals in by_device.items():
        assert [row[3] for row in intervals[:-1]] == [row[2] for row in intervals[1:]]  # each ends where the next starts
        assert intervals[-1][3] is None
        pointed = lg.identity(intervals[-1][1])
        now = lg.resolve(device_id=device_id)
        assert (pointed is None) == (now is None)  # a pointer at a forgotten person resolves to no one
        assert pointed is None or now is None or pointed.amplitude_id == now.amplitude_id
    assert len(by_device["kiosk-1"]) == 3  # kiosk person, frank's, then the new person after the deletion


def test_merges_name_the_correction_that_undid_them(capsys: pytest.CaptureFixture[str], lg: IdentityLedger,
                                                    tmp_path: Path) -> None:
    undone_merge(lg)
    out = export(capsys, lg, tmp_path / "warehouse")
    (correction,) = lg.corrections()
    assert sql("SELECT device_id, undone_by_correction FROM '{out}/merges.parquet'", out) == [
        ("kiosk-99", correction.position)]
    assert sql("SELECT user_id, reason FROM '{out}/corrections.parquet'", out) == [("shared-login", "a shared login")]
    assert ("shared-login",) in sql("SELECT user_id FROM '{out}/user_bindings.parquet'", out)


def test_since_and_row_groups(capsys: pytest.CaptureFixture[str], lg: IdentityLedger, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquet, "ROW_GROUP", 4)
    monkeypatch.setattr(parquet, "PAGE", 3)
    history(lg)
    middle = lg.position // 2
    out = export(capsys, lg, tmp_path / "later", "--since", str(middle))
    later = [event.position for event in lg.events(limit=10_000) if event.position > middle]
    assert [row[0] for row in sql("SELECT position FROM '{out}/events.parquet' ORDER BY 1", out)] == later
    whole = export(capsys, lg, tmp_path / "whole")
    assert pq.ParquetFile(whole / "events.parquet").num_row_groups > 1
    assert sql("SELECT count(*) FROM '{out}/events.parquet'", whole) == [(len(lg.events(limit=10_000)),)]
    assert not list(whole.glob("*.partial"))


def test_without_pyarrow_the_command_names_the_extra(new_url: Callable[[], str], tmp_path: Path) -> None:
    hidden = tmp_path / "hide"
    hidden.mkdir()
    (hidden / "sitecustomize.py").write_text("import sys\nsys.modules['pyarrow'] = None\n")
    url = new_url()
    IdentityLedger(url).close()
    finished = subprocess.run(
        [sys.executable, "-c", "import sys; from ledger.cli import main; sys.exit(main())", "export", "--db", url,
         "--format", "parquet", "--out", str(tmp_path / "out")],
        env={**os.environ, "PYTHONPATH": f"{hidden}{os.pathsep}{os.getcwd()}"}, capture_output=True, text=True,
        timeout=120)
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [f"ledger: error: {parquet.INSTALL}"]
