"""What a new user meets first: line counts, encodings, a missing ledger, --version, help, forgotten IDs."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import IdentityLedger
from tests.cli_helpers import assert_one_line_error, ledger
from tests.helpers import event

ROOT = Path(__file__).resolve().parents[2]
EVENTS = [{"event_type": "view", "device_id": f"device-{n}", "insert_id": f"i-{n}"} for n in range(3)]


def test_blank_lines_are_counted_among_the_lines_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "blank.jsonl"
    source.write_text(f"{json.dumps(EVENTS[0])}\n\n{json.dumps(EVENTS[1])}\n   \n{json.dumps(EVENTS[2])}\n")
    result = ledger(capsys, "ingest", "--db", f"sqlite:///{tmp_path / 'l.db'}", str(source), "--json")
    assert result.code == 0, result
    assert (result.json()["lines"], result.json()["ingested"], result.json()["problems"]) == (5, 3, [])


@pytest.mark.parametrize("encoding, words", [
    ("utf-16", ["UTF-16", "byte-order mark", "UTF-8 only"]),  # Python writes a BOM, as Windows tools do
    ("utf-16-le", ["UTF-16", "UTF-8 only"]),
    ("utf-16-be", ["UTF-16", "UTF-8 only"]),
])
def test_a_utf16_file_is_refused_in_one_line_that_names_the_encoding(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path, encoding: str,
                                                                     words: list[str]) -> None:
    source = tmp_path / "wide.jsonl"
    source.write_bytes("".join(json.dumps(e) + "\n" for e in EVENTS).encode(encoding))
    result = ledger(capsys, "ingest", "--db", f"sqlite:///{tmp_path / 'l.db'}", str(source), "--json")
    assert result.code == 2 and result.json()["ingested"] == 0
    [problem] = result.json()["problems"]
    assert problem["where"] == str(source) and all(word in problem["reason"] for word in words), problem


@pytest.mark.parametrize("argv", [
    ["stats"], ["resolve", "--user-id", "u"], ["timeline", "--device-id", "d"], ["merges"], ["export"],
    ["deletions"], ["rebuild"], ["forget", "--user-id", "u", "--requester", "r"],
])
def test_a_command_on_a_missing_ledger_leaves_no_file_behind(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEDGER_DB", raising=False)
    assert_one_line_error(ledger(capsys, *argv), 2, "no ledger at ledger.db")
    assert list(tmp_path.iterdir()) == []


def test_version_names_the_release(capsys: pytest.CaptureFixture[str]) -> None:
    release = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = ledger(capsys, "--version")
    assert (result.code, result.out) == (0, f"ledger {release}\n")


def test_serve_explains_host_and_port(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(ledger(capsys, "serve", "--help").out.split())
    assert "--host HOST address to listen on (default 127.0.0.1" in text
    assert "--port PORT TCP port to listen on (default 8000)" in text


def test_a_forgotten_amplitude_id_is_said_to_be_forgotten(capsys: pytest.CaptureFixture[str],
                                                           open_ledger: Callable[..., IdentityLedger],
                                                           new_url: Callable[[], str]) -> None:
    url = new_url()
    with open_ledger(url) as lg:
        lg.ingest([event("device-ann", "ann@example.org"), event("device-bob", "bob@example.org")])
        lg.forget(user_ids=["ann@example.org"], requester="dpo", now=True)
    for command in ("resolve", "timeline", "audit", "show", "graph"):
        assert_one_line_error(ledger(capsys, command, "--db", url, "--amplitude-id", "1"), 1,
                              "amplitude ID 1 was forgotten")
    assert_one_line_error(ledger(capsys, "resolve", "--db", url, "--amplitude-id", "9"), 1,
                          "no identity for amplitude ID 9")
