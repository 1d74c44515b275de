"""`ledger ingest`: JSON Lines, gzip, Amplitude export zips, stdin; bad lines reported, the good rest stored."""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import assert_one_line_error, ledger


def jsonl(*rows: Any) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def event(device_id: str | None = "device-0001", user_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"event_type": "page_viewed", **fields}
    if device_id is not None:
        body["device_id"] = device_id
    if user_id is not None:
        body["user_id"] = user_id
    return body


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ingest.db'}"


MIXED = jsonl(
    event(insert_id="i1"),
    "not json at all",
    "",
    event(device_id="null", insert_id="i2"),
    "[1, 2]",
    event(device_id=None, user_id="user-0001", insert_id="i3"),
    event(device_id="abc", insert_id="i4"),
    {"device_id": "device-0002"},
)


def test_bad_lines_are_reported_with_line_numbers_and_the_rest_is_stored(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(MIXED)
    result = ledger(capsys, "ingest", "--db", url, str(path))
    assert result.code == 2  # some input was bad
    assert result.err.strip().splitlines() == [  # in line order, however each problem was found
        f"{path}:2: not JSON: JSON is malformed: invalid character (byte 4)",
        f"{path}:4: invalid device_id 'null'",
        f"{path}:5: not a JSON object",
        f"{path}:7: device_id 'abc' shorter than min_id_length",
        f"{path}:8: missing event_type",
    ]
    assert "Traceback" not in result.err
    assert re.search(r"^calls ingested\s+2$", result.out, re.MULTILINE)
    assert ledger(capsys, "stats", "--db", url, "--json").json()["events"] == 2


def test_json_report_and_duplicates_on_a_second_import(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(MIXED)
    first = ledger(capsys, "ingest", "--db", url, str(path), "--json").json()
    assert first["lines"] == 8 and first["ingested"] == 2  # the blank line 3 is read too and first["duplicates"] == 0
    assert first["rejected_requests"] == 1 and first["requests"] == 2 and not first["stopped"]
    assert {problem["where"] for problem in first["problems"]} == {f"{path}:{n}" for n in (2, 4, 5, 7, 8)}
    again = ledger(capsys, "ingest", "--db", url, str(path), "--json").json()
    assert again["ingested"] == 0 and again["duplicates"] == 2  # same device ID and insert_id: dropped


def test_strict_stops_at_the_first_bad_line(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(event(insert_id="a"), event(insert_id="b"), event(device_id="null"), event(insert_id="c")))
    result = ledger(capsys, "ingest", "--db", url, "--strict", str(path))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines == [f"{path}:3: invalid device_id 'null'",
                     "ledger: error: stopped at the first problem (--strict); the lines before it were ingested"]
    assert ledger(capsys, "stats", "--db", url, "--json").json()["events"] == 2


def test_strict_stops_at_a_line_that_is_not_json(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(event(insert_id="a"), "{oops", event(insert_id="c")))
    assert ledger(capsys, "ingest", "--db", url, "--strict", str(path)).code == 2
    assert ledger(capsys, "stats", "--db", url, "--json").json()["events"] == 1


def test_batches_of_the_requested_size(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(*(event(insert_id=f"i{n}") for n in range(5))))
    report = ledger(capsys, "ingest", "--db", url, "--batch-size", "2", str(path), "--json").json()
    assert report["requests"] == 3 and report["ingested"] == 5
    assert_one_line_error(ledger(capsys, "ingest", "--db", url, "--batch-size", "2001", str(path)), 2, "2000")


def test_stdin_and_gzip(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(jsonl(event(insert_id="g1"), event(user_id="user-0001", insert_id="g2")).encode()))
    assert ledger(capsys, "ingest", "--db", url, str(packed), "--json").json()["ingested"] == 2
    stdin = io.TextIOWrapper(io.BytesIO(jsonl(event(device_id="device-0009", insert_id="s1")).encode()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert ledger(capsys, "ingest", "--db", url, "-", "--json").json()["ingested"] == 1
    identity = ledger(capsys, "resolve", "--db", url, "--user-id", "user-0001", "--json").json()
    assert identity["device_ids"] == ["device-0001"]


def test_amplitude_export_zip(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    rows = [
        {"event_type": "page_viewed", "user_id": None, "device_id": "export-device-1", "amplitude_id": 987,
         "event_time": "2024-03-04 09:00:00.250000", "$insert_id": "ins-1", "uuid": "uuid-1",
         "event_properties": {"page": "/"}, "user_properties": {}},
        {"event_type": "signed_in", "user_id": "export-user", "device_id": "export-device-1",
         "event_time": "2024-03-04 09:01:00.000000", "uuid": "uuid-2", "event_properties": {},
         "user_properties": {"plan": "pro"}},
        {"event_type": "broken", "device_id": "export-device-2", "event_time": "yesterday"},
    ]
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as packed:
        packed.writestr("100/100_2024-03-04_9#0.json.gz", gzip.compress(jsonl(*rows).encode()))
        packed.writestr("100/100_2024-03-04_10#0.json.gz", b"this is not gzip")
    result = ledger(capsys, "ingest", "--db", url, str(archive))
    assert result.code == 2
    assert sorted(result.err.strip().splitlines()) == [
        f"{archive}:100/100_2024-03-04_10#0.json.gz:1: corrupt gzip: Not a gzipped file (b'th')",
        f"{archive}:100/100_2024-03-04_9#0.json.gz:3: event_time is not a time: 'yesterday'",
    ]
    timeline = ledger(capsys, "timeline", "--db", url, "--user-id", "export-user", "--json").json()
    assert [(e["event_type"], e["time"], e["insert_id"]) for e in timeline] == [
        ("page_viewed", 1709542800250, "ins-1"),  # the client's $insert_id wins over Amplitude's uuid
        ("signed_in", 1709542860000, "uuid-2"),
    ]
    identity = ledger(capsys, "resolve", "--db", url, "--user-id", "export-user", "--json").json()
    assert identity["user_properties"] == {"plan": "pro"}


@pytest.mark.parametrize("name, content, words", [
    ("truncated.jsonl.gz", gzip.compress(b'{"event_type": "a", "device_id": "device-1"}\n' * 50, mtime=0)[:40],
     ["corrupt gzip"]),
    ("garbage.jsonl.gz", b"plain text, not gzip", ["corrupt gzip: not a gzip file"]),
    ("garbage.zip", b"plain text, not a zip", ["corrupt zip"]),
    ("events.jsonl", b"\xc3\x28 not utf-8\n", ["not JSON"]),
    ("events.jsonl", b"\xff\xfe not utf-8\n", ["UTF-16", "UTF-8 only"]),
    ("events.jsonl", b"{\"event_type\": \"a\", \n", ["events.jsonl:1: not JSON"]),
])
def test_corrupt_input_is_one_clear_line(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path,
                                         name: str, content: bytes, words: list[str]) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert_one_line_error(ledger(capsys, "ingest", "--db", url, str(path)), 2, *words)


def test_a_missing_file_stops_before_anything_is_stored(capsys: pytest.CaptureFixture[str], url: str,
                                                         tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl(event(insert_id="x")))
    result = ledger(capsys, "ingest", "--db", url, str(good), str(tmp_path / "missing.jsonl"))
    assert_one_line_error(result, 2, "no such file", "missing.jsonl")
    assert_one_line_error(ledger(capsys, "ingest", "--db", url, str(tmp_path)), 2, "not a file")
    assert not (tmp_path / "ingest.db").exists()


def test_min_id_length_is_a_request_option(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    path = tmp_path / "short.jsonl"
    path.write_text(jsonl(event(device_id="d12", insert_id="s")))
    assert ledger(capsys, "ingest", "--db", url, str(path)).code == 2
    assert ledger(capsys, "ingest", "--db", url, "--min-id-length", "3", str(path)).code == 0
    assert ledger(capsys, "resolve", "--db", url, "--device-id", "d12").code == 0


def test_placeholder_ids_are_stored_with_a_warning(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    path = tmp_path / "placeholder.jsonl"
    path.write_text(jsonl(event(insert_id="p0"), event(user_id="None", insert_id="p1")))
    result = ledger(capsys, "ingest", "--db", url, "--min-id-length", "1", str(path))
    assert result.code == 0
    assert result.err.startswith(f"{path}:2: warning: user_id 'None' looks like a placeholder")


def test_the_report_gives_the_ledger_position_even_when_nothing_was_sent(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(jsonl(event(insert_id="p1"), event(insert_id="p2")))
    first = ledger(capsys, "ingest", "--db", url, "--json", str(good)).json()
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"event_type": "a", "device_id": "device-1"}\n' * 50)[:40])
    again = ledger(capsys, "ingest", "--db", url, "--json", str(broken))
    assert again.code == 2
    assert first["position"] > 0 and again.json()["position"] == first["position"]
