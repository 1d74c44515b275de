"""`ledger forget`, `ledger deletions` and `ledger rekey` from the command line: file, list, run, refuse."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import IdentityLedger
from tests.cli_helpers import assert_one_line_error, ledger
from tests.helpers import event
from tests.store.test_golden_ledger import GOLDEN_DB


@pytest.fixture
def url(open_ledger: Callable[..., IdentityLedger], new_url: Callable[[], str]) -> str:
    url = new_url()
    open_ledger(url).ingest([event("device-alice", "alice@example.org"), event("device-bob", "bob@example.org")])
    return url


def test_forget_files_a_job_for_tomorrow_that_is_listed_and_not_yet_due(capsys: pytest.CaptureFixture[str],
                                                                        url: str) -> None:
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    filed = ledger(capsys, "forget", "--db", url, "--user-id", "alice@example.org", "--requester", "dpo", "--json")
    assert filed.code == 0, filed
    assert filed.json()["day"] == tomorrow and filed.json()["status"] == "staging"
    listed = ledger(capsys, "deletions", "--db", url, "--json")
    assert listed.code == 0 and [job["day"] for job in listed.json()] == [tomorrow]
    text = ledger(capsys, "deletions", "--db", url)
    requested_on = filed.json()["amplitude_ids"][0]["requested_on_day"]
    assert text.out.splitlines() == [f"{tomorrow}  staging", f"  amplitude ID 1  requested by dpo on {requested_on}"]
    ran = ledger(capsys, "deletions", "--db", url, "--run")
    assert (ran.code, ran.out) == (0, "No deletion job was due.\n")
    assert ledger(capsys, "resolve", "--db", url, "--user-id", "alice@example.org").code == 0


def test_a_job_whose_only_amplitude_id_is_withdrawn_is_listed_withdrawn(capsys: pytest.CaptureFixture[str],
                                                                       url: str) -> None:
    filed = ledger(capsys, "forget", "--db", url, "--user-id", "alice@example.org", "--requester", "dpo", "--json")
    day = filed.json()["day"]
    withdrawn = ledger(capsys, "deletions", "--db", url, "--withdraw", "1", "--day", day)
    assert withdrawn.code == 0 and withdrawn.out.splitlines()[1:] == [f"{day}  withdrawn"], withdrawn
    assert ledger(capsys, "deletions", "--db", url, "--json").json() == [
        {"day": day, "status": "withdrawn", "amplitude_ids": []}]


def test_forget_now_runs_at_once(capsys: pytest.CaptureFixture[str], url: str) -> None:
    done = ledger(capsys, "forget", "--db", url, "--user-id", "bob@example.org", "--requester", "dpo", "--now")
    assert done.code == 0 and done.out.splitlines()[0].endswith("  done"), done
    assert ledger(capsys, "resolve", "--db", url, "--user-id", "bob@example.org").code == 1
    assert ledger(capsys, "resolve", "--db", url, "--user-id", "alice@example.org").code == 0


@pytest.mark.parametrize("argv, code, words", [
    (["forget", "--user-id", "nobody-known", "--requester", "dpo"], 2,
     ["Unknown IDs", "nobody-known", "pass --ignore-invalid-id"]),
    (["forget", "--amplitude-id", "9", "--requester", "dpo"], 2, ["Unknown IDs", "9", "pass --ignore-invalid-id"]),
    (["forget", "--user-id", "alice@example.org"], 2, ["--requester"]),
    (["forget", "--amplitude-id", "x", "--requester", "dpo"], 2, ["not an amplitude ID"]),
    (["forget", "--amplitude-id", "99999999999999999999", "--requester", "dpo"], 2, ["not an amplitude ID"]),
    (["forget", "--requester", "dpo"], 2, ["give amplitude_ids or user_ids"]),
    (["forget", "--user-id", "a\x00b", "--requester", "dpo"], 2, ["without NUL"]),
    (["deletions", "--start-day", "2023-13-01"], 2, ["not a day"]),
    (["deletions", "--start-day", "2023-01-01", "--end-day", "2024-01-01"], 2, ["end_day must be"]),
])
def test_bad_requests_fail_in_one_line(capsys: pytest.CaptureFixture[str], url: str, argv: list[str], code: int,
                                       words: list[str]) -> None:
    assert_one_line_error(ledger(capsys, *argv, "--db", url), code, *words)


def test_rekey_refuses_a_ledger_already_keyed_in_one_line(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert_one_line_error(ledger(capsys, "rekey", "--db", url), 2, "already keyed")


def test_rekey_keys_a_ledger_written_before_keys(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "golden.db"
    shutil.copy(GOLDEN_DB, path)
    result = ledger(capsys, "rekey", "--db", f"sqlite:///{path}")
    assert (result.code, result.out) == (0, "Rekeyed 18 device and user streams; keep and back up the key file "
                                            "with the ledger.\n")
    assert (tmp_path / "golden.db.key").exists()
    assert ledger(capsys, "resolve", "--db", f"sqlite:///{path}", "--user-id", "user-David").code == 0


def test_withdraw_takes_a_person_out_of_a_job_that_has_not_run(capsys: pytest.CaptureFixture[str], url: str) -> None:
    filed = ledger(capsys, "forget", "--db", url, "--user-id", "alice@example.org", "--requester", "dpo", "--json")
    day = filed.json()["day"]
    withdrawn = ledger(capsys, "deletions", "--db", url, "--withdraw", "1", "--day", day)
    assert withdrawn.code == 0 and withdrawn.out.splitlines()[0] == f"Withdrew amplitude ID 1 from the job of {day}."
    listed = ledger(capsys, "deletions", "--db", url, "--json").json()
    assert [(job["day"], job["amplitude_ids"]) for job in listed] == [(day, [])]
    assert_one_line_error(ledger(capsys, "deletions", "--db", url, "--withdraw", "1", "--day", day),
                          2, "not waiting in the job")
    assert_one_line_error(ledger(capsys, "deletions", "--db", url, "--withdraw", "1"), 2, "go together")
