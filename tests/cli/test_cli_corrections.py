"""`ledger retract` and `ledger corrections` (docs/corrections.md), on every backend."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from tests.cli_helpers import assert_one_line_error, ledger


def accident(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    """Three devices sign in as the placeholder user ID "None" and become one person."""
    lines = [{"event_type": kind, "device_id": device_id, "insert_id": f"{device_id}-{kind}",
              **({"user_id": "None"} if kind == "signup" else {})}
             for device_id in ("phone-ann", "laptop-bob", "tablet-cy") for kind in ("landing", "signup")]
    path = tmp_path / "accident.jsonl"
    path.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines))
    assert ledger(capsys, "ingest", "--db", url, "--min-id-length", "4", str(path)).code == 0


def test_retract_repairs_the_none_accident_and_corrections_lists_it(
        capsys: pytest.CaptureFixture[str], new_url: Callable[[], str], tmp_path: Path) -> None:
    url = new_url()
    accident(capsys, url, tmp_path)
    assert len(ledger(capsys, "resolve", "--db", url, "--user-id", "None", "--json").json()["device_ids"]) == 3

    result = ledger(capsys, "retract", "--db", url, "--user-id", "None", "--reason", "SDK sent the string None",
                    "--requester", "ops@example.com")
    assert result.code == 0, result
    assert "Retracted user ID 'None'" in result.out and "people before -> after  1 -> 3" in result.out

    assert ledger(capsys, "resolve", "--db", url, "--user-id", "None").code == 1
    people = {ledger(capsys, "resolve", "--db", url, "--device-id", device, "--json").json()["amplitude_id"]
              for device in ("phone-ann", "laptop-bob", "tablet-cy")}
    assert len(people) == 3
    listed = ledger(capsys, "corrections", "--db", url, "--json").json()
    assert [(c["user_id"], c["requester"], c["reason"]) for c in listed] == [
        ("None", "ops@example.com", "SDK sent the string None")]
    assert "ops@example.com" in ledger(capsys, "corrections", "--db", url).out
    exported = list(csv.DictReader(io.StringIO(ledger(capsys, "merges", "--db", url, "--format", "csv").out)))
    assert len(exported) == 2 and all(row["undone_server_time"] for row in exported)
    audit = ledger(capsys, "audit", "--db", url, "--user-id", "None").out
    assert "user ID retracted by ops@example.com: SDK sent the string None" in audit
    with_past = ledger(capsys, "corrections", "--db", url, "--as-of", str(listed[0]["position"] - 1))
    assert with_past.out.strip() == "(no corrections)"


def test_retract_refusals_are_one_line(capsys: pytest.CaptureFixture[str], new_url: Callable[[], str],
                                      tmp_path: Path) -> None:
    url = new_url()
    accident(capsys, url, tmp_path)
    assert_one_line_error(ledger(capsys, "retract", "--db", url, "--user-id", "nobody-at-all", "--reason", "x"),
                          2, "No stored call carries user ID 'nobody-at-all'")
    assert_one_line_error(ledger(capsys, "retract", "--db", url, "--user-id", "None", "--reason", ""),
                          2, "Invalid reason")
    assert_one_line_error(ledger(capsys, "retract", "--db", url, "--user-id", "None"), 2, "--reason")
    assert ledger(capsys, "retract", "--db", url, "--user-id", "None", "--reason", "x", "--json").json()[
        "requester"]  # the local user name by default
    assert_one_line_error(ledger(capsys, "retract", "--db", url, "--user-id", "None", "--reason", "x"),
                          2, "already retracted")
