"""`benchmarks.sql_floor` replays the very work it stands for: the replayed rebuild leaves the same rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from benchmarks.sql_floor import rebuild_statements, replay_rebuild
from benchmarks.workload import DEFAULT_SEED, MIXES, Workload, requests
from ledger import IdentityLedger
from projections import tables as t


def _projection_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as connection:
        return {table.name: sorted(connection.execute(f"SELECT * FROM {table.name}"), key=repr)
                for table in t.metadata.sorted_tables}


def test_a_replayed_rebuild_writes_what_the_rebuild_wrote(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    lg = IdentityLedger(f"sqlite:///{path}")
    for request in requests(Workload(DEFAULT_SEED, MIXES["default"]).events(400), 50):
        lg.ingest(request)
    _, transactions = rebuild_statements(lg)
    lg.close()
    rebuilt = _projection_rows(path)
    assert all(rebuilt[table.name] for table in (t.audit, t.devices, t.identities, t.merges, t.device_pointer_history,
                                                 t.user_id_history, t.merged_into_history))  # every kind of write
    with sqlite3.connect(path) as connection:  # the replay starts from scratch: it drops what is there
        connection.execute(f"DELETE FROM {t.audit.name}")
    replay_rebuild(path, transactions)
    assert _projection_rows(path) == rebuilt
