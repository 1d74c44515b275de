"""A ledger written by release 0.1.0 opens, answers and replays with today's code, on both backends.

Stored events are a public format: the golden ledger under `tests/golden/` holds every event
type 0.1.0 wrote, and its answers as 0.1.0 gave them. On PostgreSQL the same log is copied
row by row into a fresh schema and replayed there.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import CorrectionRefused, IdentityLedger
from tests.golden.write_golden import answers
from tests.helpers import Clock, connected, event

GOLDEN_DB = Path(__file__).parent.parent / "golden" / "v0.1.0.db"
GOLDEN_ANSWERS = Path(__file__).parent.parent / "golden" / "v0.1.0.answers.json"


def expected() -> dict[str, Any]:
    return json.loads(GOLDEN_ANSWERS.read_text())


def golden_rows() -> list[tuple[str, int, str, bytes]]:
    with sqlite3.connect(f"file:{GOLDEN_DB}?mode=ro", uri=True) as connection:
        return connection.execute(
            "SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid").fetchall()


def open_golden(backend: str, new_url: Callable[[], str], tmp_path: Path) -> IdentityLedger:
    """The golden ledger on the test's backend: the file itself, or its log copied into PostgreSQL."""
    if backend == "sqlite":
        path = tmp_path / "golden.db"
        shutil.copy(GOLDEN_DB, path)
        return IdentityLedger(f"sqlite:///{path}", create=False, clock=Clock(1_800_000_000_000))
    url = new_url()
    IdentityLedger(url, clock=Clock()).close()
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1).split("?")[0],
                              connect_args={"options": f"-csearch_path={url.split('schema=')[1]}"})
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO identityledger_events (originator_id, originator_version, topic, state) "
                    "VALUES (CAST(:id AS uuid), :version, :topic, :state)"),
            [{"id": i, "version": v, "topic": t, "state": s} for i, v, t, s in golden_rows()],
        )
        connection.execute(sa.text("DELETE FROM ledger_settings"))  # 0.1.0 had no key check: unkeyed keys
    engine.dispose()
    lg = IdentityLedger(url, clock=Clock(1_800_000_000_000))
    lg.rebuild()
    return lg


def test_golden_ledger_answers_as_it_did(backend: str, new_url: Callable[[], str], tmp_path: Path) -> None:
    with open_golden(backend, new_url, tmp_path) as lg:
        assert answers(lg) == expected()


def test_golden_ledger_replays_to_the_same_answers(backend: str, new_url: Callable[[], str], tmp_path: Path) -> None:
    with open_golden(backend, new_url, tmp_path) as lg:
        lg.rebuild()
        assert answers(lg) == expected()
        with lg.as_of(lg.position) as past:
            assert past.resolve(user_id="user-David") == lg.resolve(user_id="user-David")


def test_golden_ledger_takes_new_calls(backend: str, new_url: Callable[[], str], tmp_path: Path) -> None:
    with open_golden(backend, new_url, tmp_path) as lg:
        before = expected()["people"]
        lg.ingest([event("device-G", None), event("device-new-one", "user-David")])
        david = lg.resolve(user_id="user-David")
        assert david is not None and david.amplitude_id == before["user-David"]["amplitude_id"]
        assert "device-new-one" in david.device_ids
        assert lg.resolve(device_id="device-G").amplitude_id == before["device-G"]["amplitude_id"]
        assert lg.stats().events == expected()["stats"]["events"] + 2


def test_golden_ledger_forgets_people_whole_and_replays(backend: str, new_url: Callable[[], str],
                                                        tmp_path: Path) -> None:
    """0.1.0's stored shapes (tracked events on device streams) are erased too; its keys stay unkeyed."""
    from tests.domain.test_validation import snapshot
    from tests.store.test_deletion_jobs import found, stored_text

    with open_golden(backend, new_url, tmp_path) as lg:
        assert not lg.diagnostics().keyed
        mary = lg.resolve(user_id="user-Mary")
        job = lg.forget(user_ids=["user-David", "user-Jane"], requester="dpo", now=True)
        assert job["status"] == "done"
        assert all(lg.is_forgotten(amplitude_id) for amplitude_id in (6, 8, 9))
        assert lg.resolve(user_id="user-David") is None and lg.resolve(user_id="user-Mary") == mary
        stored = stored_text(lg)
        assert [text for text in ("user-David", "device-Y", "device-Z", "user-Jane", "Oslo") if found(stored, text)] == []
        assert found(stored, "user-Mary") and found(stored, "device-R")  # device-R is Mary's too
        incremental = snapshot(lg)
        lg.rebuild()
        assert snapshot(lg) == incremental
        for position in range(0, lg.position + 1, 7):
            with lg.as_of(position) as view:
                assert view.identity(8) is None and view.timeline(6) == []


def test_golden_ledger_rekeyed_answers_as_it_did_and_hides_its_keys(backend: str, new_url: Callable[[], str],
                                                                     tmp_path: Path) -> None:
    from ledger.domain.keys import UNKEYED
    from ledger.errors import LedgerError

    with open_golden(backend, new_url, tmp_path) as lg:
        url = lg.url
        assert lg.rekey() == 12 + 6  # every device and every user ID
        assert answers(lg) == expected()
        with pytest.raises(LedgerError, match="already keyed"):
            lg.rekey()
        lg.ingest([event("device-Y", "user-David"), event("device-new", "user-John")])
        assert lg.resolve(user_id="user-John").device_ids == ["device-G", "device-new"]
        with connected(lg.url) as connection:
            stored = {str(row[0]).replace("-", "") for row in connection.execute(sa.text(
                f"SELECT originator_id FROM {lg.diagnostics().events_table}"))}
        assert not {UNKEYED.user("user-John").hex, UNKEYED.device("device-G").hex} & stored
        assert lg._context.cache.keys.user("user-John").hex in stored
    with IdentityLedger(url, create=False) as again:  # its key file is found where it was made
        assert again.resolve(user_id="user-David").merged_amplitude_ids == [9]
        again.rebuild()
        assert again.resolve(device_id="device-Y").amplitude_id == 8


def test_golden_history_is_refused_by_a_correction_and_new_history_is_corrected(
        backend: str, new_url: Callable[[], str], tmp_path: Path) -> None:
    """0.1.0 kept tracked events on device streams: a correction touching them is refused (422), whole."""
    with open_golden(backend, new_url, tmp_path) as lg:
        position = lg.position
        with pytest.raises(CorrectionRefused) as refused:
            lg.retract_user_id("user-David", reason="test", requester="test")
        assert refused.value.status == 422 and lg.position == position
        assert answers(lg) == expected()
        lg.ingest([event("device-fresh-1", "user-fresh"), event("device-fresh-2", "user-fresh")])
        correction = lg.retract_user_id("user-fresh", reason="test", requester="test")
        assert correction.changes.people_after == 2 and lg.resolve(user_id="user-fresh") is None
