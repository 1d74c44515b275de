"""The command as a person meets it: JSON arrays and BOMs, progress in bytes, Ctrl-C, width, LEDGER_DEBUG."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger import IdentityLedger
from ledger.cli.importing import Reading, read_rows
from ledger.cli.progress import ProgressBar
from tests.cli_helpers import assert_one_line_error, ledger


def _events(count: int, prefix: str = "e") -> list[dict[str, str]]:
    return [{"event_type": "view", "device_id": f"device-{n % 100:03d}", "insert_id": f"{prefix}-{n}"}
            for n in range(count)]


def test_a_json_array_is_ingested_as_its_elements(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "events.json"
    source.write_text(json.dumps(_events(20_000), indent=2))
    result = ledger(capsys, "ingest", "--db", f"sqlite:///{tmp_path / 'a.db'}", str(source), "--json")
    assert result.code == 0 and result.err == ""
    assert result.json()["ingested"] == 20_000 and result.json()["problems"] == []


def test_a_bad_element_of_an_array_is_named_by_index(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "events.json"
    source.write_text(json.dumps([*_events(2), {"device_id": "device-x"}, 7]))
    result = ledger(capsys, "ingest", "--db", f"sqlite:///{tmp_path / 'a.db'}", str(source))
    assert result.code == 2
    assert result.err.splitlines() == [f"{source}:[2]: missing event_type", f"{source}:[3]: not a JSON object"]


def test_a_utf8_byte_order_mark_is_skipped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "bom.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + b"\n".join(json.dumps(e).encode() for e in _events(3)) + b"\n")
    result = ledger(capsys, "ingest", "--db", f"sqlite:///{tmp_path / 'b.db'}", str(source), "--json")
    assert result.code == 0 and result.json()["ingested"] == 3


def test_json_lines_that_are_arrays_stay_lines(tmp_path: Path) -> None:
    source = tmp_path / "lines.jsonl"
    source.write_text('[1, 2]\n{"event_type": "x", "device_id": "device-1"}\n')
    rows = list(read_rows([str(source)], io.BytesIO()))
    assert [(row.where, row.problem) for row in rows] == [(f"{source}:1", "not a JSON object"), (f"{source}:2", None)]


def test_reading_follows_the_bytes_of_its_files(tmp_path: Path) -> None:
    first, second = tmp_path / "1.jsonl", tmp_path / "2.jsonl"
    for path in (first, second):
        path.write_text("".join(json.dumps(e) + "\n" for e in _events(500)))
    reading = Reading([str(first), str(second)])
    assert reading.total == first.stat().st_size * 2
    seen = [reading.done for _ in read_rows([str(first), str(second)], io.BytesIO(), reading)]
    assert seen == sorted(seen) and seen[0] > 0 and seen[-1] <= reading.total == reading.done
    assert Reading(["-"]).total is None  # stdin: size unknown, the bar counts lines


def test_progress_in_bytes_shows_percent_and_time_left() -> None:
    bar = ProgressBar("ingesting", "bytes", 40_000_000, stream=io.StringIO())
    bar.update(10_000_000)
    assert bar.line(2.0) == "ingesting [######..................] 10.0/40.0 MB   25%  5.0 MB/s  ETA 6s"


def test_demo_output_fits_100_columns(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    """Everything but the database's own name fits (the commands it suggests are printed whole, to copy)."""
    monkeypatch.chdir(tmp_path)
    result = ledger(capsys, "demo", "--db", "sqlite:///d.db", "--calls", "3000")
    assert result.code == 0
    wide = [line for line in result.out.splitlines() if len(line) > 100]
    assert wide == []


@pytest.mark.parametrize("argv", [
    ["resolve", "--user-id", "nobody"],                    # not found (exit 1)
    ["stats", "--verbose"],                                # usage (exit 2)
    ["stats", "--db", "postgres://nowhere"],               # bad URL (exit 2)
])
def test_ledger_debug_gives_a_traceback_for_every_error(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        argv: list[str]) -> None:
    db = f"sqlite:///{tmp_path / 'dbg.db'}"
    assert ledger(capsys, "demo", "--db", db, "--calls", "50").code == 0
    monkeypatch.setenv("LEDGER_DB", db)
    quiet = ledger(capsys, *argv)
    assert_one_line_error(quiet, quiet.code)
    assert quiet.code in (1, 2)
    monkeypatch.setenv("LEDGER_DEBUG", "1")
    loud = ledger(capsys, *argv)
    assert loud.code == quiet.code
    assert loud.err.startswith("Traceback (most recent call last):")
    assert loud.err.strip().splitlines()[-1] == quiet.err.strip()


def test_ledger_debug_shows_the_traceback_of_a_bug(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.cli.reading as reading

    def broken(_: object) -> int:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(reading, "stats", broken)
    assert_one_line_error(ledger(capsys, "stats"), 2, "ZeroDivisionError: a bug")
    monkeypatch.setenv("LEDGER_DEBUG", "1")
    loud = ledger(capsys, "stats")
    assert loud.code == 2 and "Traceback" in loud.err and 'raise ZeroDivisionError("a bug")' in loud.err


def _stored_events(db: Path) -> int:
    """Rows in the event store (tracked events and identity facts), read without the ledger."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as connection:
            return int(connection.execute("SELECT count(*) FROM stored_events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet


def test_ctrl_c_says_how_much_was_stored(tmp_path: Path) -> None:
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in _events(400_000)))
    db = tmp_path / "interrupted.db"
    process = subprocess.Popen([str(Path(sys.executable).parent / "ledger"), "ingest", "--db", f"sqlite:///{db}",
                                "--batch-size", "500", str(source)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        while _stored_events(db) < 2000:  # well under way, far from done
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    said = re.search(r"^ledger: error: interrupted: ([\d,]+) calls were stored", err)
    assert said is not None, err
    stored = int(said.group(1).replace(",", ""))
    assert 0 < stored < 400_000
    with IdentityLedger(f"sqlite:///{db}", create=False) as lg:
        tracked = lg.stats().events
    assert 0 <= tracked - stored <= 500  # all it counted is stored; at most the request in flight more
