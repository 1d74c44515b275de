"""The `ledger` command end to end: demo, the read commands, rebuild, serve, and its error contract."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from ledger.cli.commands import main
from ledger.cli.synthetic import EXAMPLE_USER_ID, HOUSEMATE_USER_ID
from tests.cli_helpers import Result, assert_one_line_error, ledger

ROOT = Path(__file__).resolve().parents[2]
AMPLITUDE_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Result]:
    """One small demo ledger shared by the read-command tests (they never write)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    out, err = io.StringIO(), io.StringIO()  # capsys is per test; this runs once per module
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["demo", "--db", url, "--calls", "2000"])
    return url, Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def db(demo_db: tuple[str, Result]) -> str:
    return demo_db[0]


# -- demo -----------------------------------------------------------------------------


def test_demo_reports_what_happened_and_a_worked_example(demo_db: tuple[str, Result]) -> None:
    url, result = demo_db
    assert result.code == 0, result.err
    assert result.err == ""  # no progress bar when stderr is not a terminal
    out = result.out
    assert "2,000 synthetic calls" in out and url in out
    for figure in ("calls ingested", "duplicates dropped", "requests rejected", "users", "identified users", "merges"):
        assert re.search(rf"^{figure}\s+[\d,]+", out, re.MULTILINE), figure
    assert re.search(r"^duplicates dropped\s+[1-9]", out, re.MULTILINE)  # client retries repeat insert_ids
    assert re.search(r"^requests rejected\s+[1-9]", out, re.MULTILINE)
    assert "invalid device_id" in out and "invalid user_id" in out and "shorter than min_id_length" in out
    assert f"Worked example: {EXAMPLE_USER_ID}" in out
    assert "merged into" in out and "user ID bound" in out and "Latest events" in out


def test_demo_says_where_the_secret_is_and_git_ignores_every_file_it_leaves(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`ledger demo` in a fresh clone must not offer the ledger's secret for commit."""
    monkeypatch.chdir(tmp_path)
    result = ledger(capsys, "demo", "--calls", "50")
    assert result.code == 0, result.err
    assert f"secret is in {tmp_path / 'ledger.db.key'}" in " ".join(result.out.split())
    patterns = [line for line in (ROOT / ".gitignore").read_text().splitlines() if line and not line.startswith("#")]
    left = sorted(path.name for path in tmp_path.iterdir())
    assert "ledger.db.key" in left
    assert [name for name in left if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)] == []


def test_demo_refuses_a_ledger_that_already_holds_events(capsys: pytest.CaptureFixture[str], db: str) -> None:
    assert_one_line_error(ledger(capsys, "demo", "--db", db, "--calls", "10"), 2, "already holds")


def test_demo_is_the_same_for_the_same_seed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    stats = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.db"
        assert ledger(capsys, "demo", "--db", url, "--calls", "300", "--seed", "7").code == 0
        stats.append(ledger(capsys, "stats", "--db", url, "--json").json())
    assert stats[0] == stats[1]


# -- reading ----------------------------------------------------------------------------


def test_stats(capsys: pytest.CaptureFixture[str], db: str) -> None:
    stats = ledger(capsys, "stats", "--db", db, "--json").json()
    assert set(stats) == {"events", "users", "identified_users", "devices", "merges", "position"}
    assert stats["events"] > 1000 and stats["merges"] > 0 and 0 < stats["identified_users"] < stats["users"]
    text = ledger(capsys, "stats", "--db", db).out
    assert re.search(rf"^identified users\s+{stats['identified_users']:,}$", text, re.MULTILINE)


def test_resolve_by_user_device_and_amplitude_id(capsys: pytest.CaptureFixture[str], db: str) -> None:
    ada = ledger(capsys, "resolve", "--db", db, "--user-id", EXAMPLE_USER_ID, "--json").json()
    assert ada["user_id"] == EXAMPLE_USER_ID
    assert len(ada["device_ids"]) == 3 and len(ada["merged_amplitude_ids"]) == 1
    assert ada["user_properties"]["plan"] == "pro"
    laptop, _phone, tablet = ada["device_ids"]
    # The family tablet's last user was Ada: its next anonymous event goes to her.
    assert ledger(capsys, "resolve", "--db", db, "--device-id", tablet, "--json").json() == ada
    merged = ada["merged_amplitude_ids"][0]
    by_merged_id = ledger(capsys, "resolve", "--db", db, "--amplitude-id", str(merged), "--json").json()
    assert by_merged_id["amplitude_id"] == ada["amplitude_id"]
    grace = ledger(capsys, "resolve", "--db", db, "--user-id", HOUSEMATE_USER_ID, "--json").json()
    assert grace["amplitude_id"] != ada["amplitude_id"]  # a shared device never merges two user IDs

    text = ledger(capsys, "resolve", "--db", db, "--user-id", EXAMPLE_USER_ID)
    assert text.code == 0
    assert re.search(rf"^user ID\s+{EXAMPLE_USER_ID}$", text.out, re.MULTILINE)
    assert laptop in text.out and re.search(rf"^merged amplitude IDs\s+{merged}$", text.out, re.MULTILINE)


def test_resolve_as_of_an_earlier_position(capsys: pytest.CaptureFixture[str], db: str) -> None:
    position = ledger(capsys, "stats", "--db", db, "--json").json()["position"]
    now = ledger(capsys, "resolve", "--db", db, "--user-id", EXAMPLE_USER_ID, "--as-of", str(position), "--json")
    assert now.json()["user_id"] == EXAMPLE_USER_ID
    assert_one_line_error(ledger(capsys, "resolve", "--db", db, "--user-id", EXAMPLE_USER_ID, "--as-of", "0"),
                          1, "no identity")


def test_as_of_a_time_and_its_refusals(capsys: pytest.CaptureFixture[str], db: str) -> None:
    position = ledger(capsys, "stats", "--db", db, "--json").json()["position"]
    today = ledger(capsys, "stats", "--db", db, "--json", "--as-of", "2025-01-01T00:00:00+00:00")
    assert today.code == 0 and today.json()["position"] == 0  # before the demo's first call
    assert_one_line_error(ledger(capsys, "stats", "--db", db, "--as-of", str(position + 1)), 2,
                          f"position {position + 1} is past the end of the ledger ({position})")
    assert_one_line_error(ledger(capsys, "stats", "--db", db, "--as-of", "2999-01-01T00:00:00Z"), 2, "in the future")
    assert_one_line_error(ledger(capsys, "stats", "--db", db, "--as-of", "2026-01-01T00:00:00"), 2, "time zone")
    assert ledger(capsys, "stats", "--db", db, "--as-of", "yesterday").code == 2  # argparse: not a position or time


def test_explain_a_tracked_event(capsys: pytest.CaptureFixture[str], db: str) -> None:
    events = ledger(capsys, "export", "--db", db).out.splitlines()
    first = json.loads(events[0])
    explained = ledger(capsys, "explain", "--db", db, str(first["position"]), "--json")
    assert explained.code == 0 and explained.json()["position"] == first["position"]
    assert explained.json()["because"][0]["kind"] == "created"
    text = ledger(capsys, "explain", "--db", db, str(first["position"]))
    assert text.out.startswith(f"the event at position {first['position']} arrived as amplitude ID")
    assert_one_line_error(ledger(capsys, "explain", "--db", db, "1"), 1, "no tracked event at position 1")


def test_resolve_unknown_is_not_found(capsys: pytest.CaptureFixture[str], db: str) -> None:
    result = ledger(capsys, "resolve", "--db", db, "--user-id", "nobody@example.com", "--json")
    assert_one_line_error(result, 1, "no identity for user ID 'nobody@example.com'")
    assert result.out == ""


def test_timeline_shows_merged_events_under_the_live_amplitude_id(capsys: pytest.CaptureFixture[str], db: str) -> None:
    events = ledger(capsys, "timeline", "--db", db, "--user-id", EXAMPLE_USER_ID, "--json").json()
    live = {event["amplitude_id"] for event in events}
    assert len(live) == 1
    assert any(event["original_amplitude_id"] not in live for event in events)  # the phone's anonymous event
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    text = ledger(capsys, "timeline", "--db", db, "--user-id", EXAMPLE_USER_ID, "--limit", "2").out
    assert len(text.strip().splitlines()) == 2 + 2  # header, rule, two events
    first = str(events[0]["position"])
    after = ledger(capsys, "timeline", "--db", db, "--user-id", EXAMPLE_USER_ID, "--after", first, "--json")
    assert len(after.json()) == len(events) - 1


def test_audit_tells_when_and_by_which_call(capsys: pytest.CaptureFixture[str], db: str) -> None:
    entries = ledger(capsys, "audit", "--db", db, "--user-id", EXAMPLE_USER_ID, "--json").json()
    kinds = [entry["kind"] for entry in entries]
    assert kinds.index("created") < kinds.index("bound") < kinds.index("merged")
    assert all(entry["insert_id"] for entry in entries if entry["kind"] == "bound")
    text = ledger(capsys, "audit", "--db", db, "--user-id", EXAMPLE_USER_ID).out
    assert "user ID bound" in text and "merged into" in text and "pointer moved" in text
    assert_one_line_error(ledger(capsys, "audit", "--db", db, "--device-id", "no-such-device"), 1, "no audit trail")


def test_merges_in_amplitude_export_shape(capsys: pytest.CaptureFixture[str], db: str) -> None:
    merges = ledger(capsys, "merges", "--db", db, "--json").json()
    assert merges and set(merges[0]) == {"amplitude_id", "merged_amplitude_id", "merge_event_time", "merge_server_time"}
    rows = list(csv.DictReader(io.StringIO(ledger(capsys, "merges", "--db", db, "--format", "csv").out)))
    assert len(rows) == len(merges)
    assert rows[0]["amplitude_id"] == str(merges[0]["amplitude_id"])
    assert AMPLITUDE_TIME.match(rows[0]["merge_event_time"]) and AMPLITUDE_TIME.match(rows[0]["merge_server_time"])
    lines = ledger(capsys, "merges", "--db", db, "--format", "jsonl").out.splitlines()
    assert len(lines) == len(merges) and '"merged_amplitude_id"' in lines[0]
    table = ledger(capsys, "merges", "--db", db).out
    assert table.startswith("amplitude_id") and len(table.splitlines()) == len(merges) + 2
    assert_one_line_error(ledger(capsys, "merges", "--db", db, "--json", "--format", "csv"), 2, "--json")


def test_show_one_person_at_a_glance(capsys: pytest.CaptureFixture[str], db: str) -> None:
    text = ledger(capsys, "show", "--db", db, "--user-id", EXAMPLE_USER_ID, "--events", "3")
    assert text.code == 0
    assert "Audit trail" in text.out and "Latest events (3 of" in text.out and "purchase_completed" in text.out
    shown = ledger(capsys, "show", "--db", db, "--user-id", EXAMPLE_USER_ID, "--json").json()
    assert shown["identity"]["user_id"] == EXAMPLE_USER_ID
    assert shown["audit"] and len(shown["latest_events"]) == min(10, shown["events"])
    assert shown["latest_events"][-1]["event_type"] == "purchase_completed"


def test_graph_as_mermaid_and_dot(capsys: pytest.CaptureFixture[str], db: str) -> None:
    ada = ledger(capsys, "resolve", "--db", db, "--user-id", EXAMPLE_USER_ID, "--json").json()
    live, merged = ada["amplitude_id"], ada["merged_amplitude_ids"][0]
    mermaid = ledger(capsys, "graph", "--db", db, "--user-id", EXAMPLE_USER_ID).out
    assert mermaid.startswith("flowchart LR")
    assert re.search(rf"u -->\|\"bound [^\"]+\"\| a{live}\b", mermaid)
    assert re.search(rf"a{merged} -->\|\"merged [^\"]+\"\| a{live}\b", mermaid)
    for device in ada["device_ids"]:
        assert f'["device {device}"]' in mermaid
    assert re.search(rf'd\d+ -->\|"linked"\| a{merged}\b', mermaid)  # the phone, while anonymous
    dot = ledger(capsys, "graph", "--db", db, "--user-id", EXAMPLE_USER_ID, "--format", "dot").out
    assert dot.startswith("digraph person {") and dot.rstrip().endswith("}")
    assert f"a{merged} -> a{live}" in dot
    shape = ledger(capsys, "graph", "--db", db, "--user-id", EXAMPLE_USER_ID, "--json").json()
    assert {node["kind"] for node in shape["nodes"]} == {"user", "live", "merged", "device"}


def test_rebuild_ends_where_the_live_ledger_was(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    assert ledger(capsys, "demo", "--db", url, "--calls", "300").code == 0
    before = ledger(capsys, "stats", "--db", url, "--json").json()
    merges = ledger(capsys, "merges", "--db", url, "--json").out
    result = ledger(capsys, "rebuild", "--db", url)
    assert result.code == 0
    assert result.out.startswith(f"Rebuilt the projections from position 0 to {before['position']:,}")
    assert ledger(capsys, "stats", "--db", url, "--json").json() == before
    assert ledger(capsys, "merges", "--db", url, "--json").out == merges
    assert ledger(capsys, "rebuild", "--db", url, "--json").json()["position"] == before["position"]


# -- the error contract and configuration ------------------------------------------------------


@pytest.mark.parametrize("argv, words", [
    (["stats", "--bogus"], ["unrecognized arguments: --bogus"]),
    (["frobnicate"], ["invalid choice"]),
    ([], ["required"]),
    (["resolve"], ["one of the arguments"]),
    (["resolve", "--user-id", "a", "--device-id", "b"], ["not allowed with"]),
    (["timeline", "--user-id", "a", "--limit", "zero"], ["not a whole number"]),
    (["stats", "--db", "mysql://x/y"], ["unsupported database"]),
    (["stats", "--db", "::not a url::"], ["not a database URL"]),
])
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]) -> None:
    assert_one_line_error(ledger(capsys, *argv), 2, *words)


def test_reading_a_missing_sqlite_ledger_does_not_create_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "absent.db"
    assert_one_line_error(ledger(capsys, "stats", "--db", f"sqlite:///{path}"), 2, "no ledger at")
    assert not path.exists()


def test_db_comes_from_the_environment_or_either_side_of_the_command(
    capsys: pytest.CaptureFixture[str], db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = ledger(capsys, "stats", "--db", db, "--json").json()
    assert ledger(capsys, "--db", db, "stats", "--json").json() == expected
    monkeypatch.setenv("LEDGER_DB", db)
    assert ledger(capsys, "stats", "--json").json() == expected


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    result = ledger(capsys, "--help")
    assert result.code == 0
    for command in ("demo", "ingest", "serve", "rebuild", "resolve", "timeline", "audit", "merges", "stats", "show",
                    "graph", "export"):
        assert command in result.out


def test_serve_refuses_without_an_api_key(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.delenv("LEDGER_API_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert_one_line_error(ledger(capsys, "serve", "--db", url), 2, "no API key")


def test_serve_refuses_without_a_secret_key(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.delenv("LEDGER_SECRET_KEY", raising=False)
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert_one_line_error(ledger(capsys, "serve", "--db", url, "--api-key", "k1"), 2, "secret key")


def test_serve_passes_its_configuration(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.server.app as server

    seen: dict[str, object] = {}
    monkeypatch.setattr(server, "serve", lambda **options: seen.update(options))
    monkeypatch.setenv("LEDGER_API_KEY", "key-one, key-two")
    monkeypatch.setenv("LEDGER_SECRET_KEY", "s3cret")
    assert ledger(capsys, "serve", "--db", "sqlite:///x.db", "--port", "9001").code == 0
    assert seen == {"db_url": "sqlite:///x.db", "host": "127.0.0.1", "port": 9001,
                    "api_keys": ["key-one", "key-two"], "secret_key": "s3cret", "cors_origins": None,
                    "projects": None, "buffer": None, "deletions_every": 3600, "trusted_origins": None}
    assert ledger(capsys, "serve", "--api-key", "flag-key", "--secret-key", "flag-secret", "--run-deletions-every", "0",
                  "--cors-origin", "https://a.example", "--cors-origin", "http://b.example:8080",
                  "--trusted-origin", "https://admin.example").code == 0
    assert seen["deletions_every"] == 0 and seen["trusted_origins"] == ["https://admin.example"]
    assert seen["api_keys"] == ["flag-key"] and seen["secret_key"] == "flag-secret"
    assert seen["cors_origins"] == ["https://a.example", "http://b.example:8080"]


def test_serve_refuses_a_cors_origin_that_is_not_an_origin(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = ledger(capsys, "serve", "--db", url, "--api-key", "k1", "--secret-key", "a-secret-of-20-chars",
                    "--cors-origin", "https://shop.example.com/")
    assert_one_line_error(result, 2, "not a CORS origin: 'https://shop.example.com/'")
    assert not (tmp_path / "s.db").exists()


# -- the installed script ---------------------------------------------------------------------------


def _script() -> str:
    return str(Path(sys.executable).parent / "ledger")


def test_the_installed_script_runs_the_demo_and_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'script.db'}"
    env = {**os.environ, "LEDGER_DB": url}
    demo = subprocess.run([_script(), "demo", "--calls", "300"], capture_output=True, text=True, env=env, timeout=60)
    assert demo.returncode == 0, demo.stderr
    assert "Worked example" in demo.stdout and demo.stderr == ""
    resolve = subprocess.run([_script(), "resolve", "--user-id", EXAMPLE_USER_ID, "--json"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert resolve.returncode == 0 and EXAMPLE_USER_ID in resolve.stdout


def test_the_installed_script_fails_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    run = subprocess.run([_script(), "ingest", "--db", f"sqlite:///{tmp_path / 'x.db'}", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "corrupt gzip" in run.stderr
    unknown = subprocess.run([_script(), "stats", "--nope"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "Traceback" not in unknown.stderr
