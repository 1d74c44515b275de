"""`projections.identity_card`: who someone is comes back from one statement, live and in the past, on both
backends; only a ledger that stores corrections asks more (whether the person was retired)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from ledger import IdentityLedger
from projections.statements import Prepared
from tests.helpers import event


@pytest.fixture
def statements(lg: IdentityLedger, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the read side sends from now on: on the driver's cursor, or through SQLAlchemy."""
    sent: list[str] = []
    rows = Prepared.rows

    def counted(self: Prepared, connection: sa.Connection, **values: Any) -> list[tuple[Any, ...]]:
        sent.append(self._compiled(connection.dialect).sql)
        return rows(self, connection, **values)

    monkeypatch.setattr(Prepared, "rows", counted)
    sa.event.listen(lg._store.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    return sent


def test_a_resolve_is_one_statement_live_and_past(lg: IdentityLedger, statements: list[str]) -> None:
    lg.ingest([event("device-A", user_properties={"plan": "free"}), event("device-B", "user-1")])
    before = lg.position
    lg.ingest([event("device-A", "user-1"), event("device-C", "user-1")])  # device-A's person merges into user-1's
    with lg.as_of(before) as view:
        for reader, device_ids, merged in ((view, ["device-A"], []), (lg.read_model, ["device-B", "device-A", "device-C"], [1])):
            statements.clear()
            found = reader.resolve(device_id="device-A")
            assert len(statements) == 1
            assert found is not None and found.device_ids == device_ids and found.merged_amplitude_ids == merged
            statements.clear()
            assert reader.resolve(user_id="user-1") == (found if merged else reader.identity(2))
            assert reader.resolve(device_id="device-unknown") is None
            assert reader.identity(found.amplitude_id) == found
    assert view.resolve(device_id="device-A").user_properties == {"plan": "free"}  # type: ignore[union-attr]
    assert len(statements) == 4


def test_a_stored_correction_adds_the_retired_check_and_answers_none_for_a_retired_person(
        lg: IdentityLedger, statements: list[str]) -> None:
    lg.ingest([event("device-A", "user-placeholder")])
    before = lg.position
    lg.retract_user_id("user-placeholder", reason="a placeholder", requester="test")
    statements.clear()
    assert lg.read_model.identity(1) is None  # retired: its events count for the person split off it
    assert len(statements) == 2
    with lg.as_of(before) as view:
        assert view.identity(1) is not None and view.resolve(user_id="user-placeholder") is not None
