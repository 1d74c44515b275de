"""`projections.statements.Prepared`: a statement run on the driver's cursor answers what SQLAlchemy's execution
of it answers, on both backends, with its parameters repeated, bound at build time, or bound per question."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from ledger import IdentityLedger
from projections import history
from projections.statements import Prepared
from tests.helpers import event


def _person_statement(tables: history.Tables) -> sa.Select[int, str | None, int]:
    """The same parameter twice, plus, in a past view, the position bound into the history subqueries."""
    identities, merges = tables.identities, tables.merges
    asked = identities.c.amplitude_id == sa.bindparam("amplitude_id")
    live_id = sa.select(sa.func.coalesce(identities.c.merged_into, identities.c.amplitude_id)).where(asked)
    return (sa.select(identities.c.amplitude_id, identities.c.user_id, merges.c.amplitude_id)
            .select_from(identities.outerjoin(merges, merges.c.merged_amplitude_id == live_id
                                              .correlate(None).scalar_subquery()))
            .where(asked).order_by(merges.c.position))


def test_driver_rows_equal_sqlalchemy_rows_live_and_in_the_past(lg: IdentityLedger) -> None:
    lg.ingest([event("device-A"), event("device-B", "user-1")])
    middle = lg.position
    lg.ingest([event("device-A", "user-1"), event("device-C", "user-2")])  # device-A's person merges into user-1's
    engine = lg._store.engine
    for tables in (history.LIVE, history.at(middle)):
        statement = _person_statement(tables)
        prepared = Prepared(statement)
        with engine.connect() as connection:
            for amplitude_id in range(6):
                expected = [tuple(row) for row in connection.execute(statement, {"amplitude_id": amplitude_id})]
                assert prepared.rows(connection, amplitude_id=amplitude_id) == expected
                assert prepared.first(connection, amplitude_id=amplitude_id) == (expected[0] if expected else None)
                assert prepared.scalar(connection, amplitude_id=amplitude_id) == (expected[0][0] if expected else None)
    with engine.connect() as connection:  # the merge shows live, not half-way
        live = Prepared(_person_statement(history.LIVE)).rows(connection, amplitude_id=1)
        past = Prepared(_person_statement(history.at(middle))).rows(connection, amplitude_id=1)
    assert live != past and [row[2] for row in past] == [None]


def test_an_expanding_in_is_refused_when_first_run(lg: IdentityLedger) -> None:
    devices = history.LIVE.devices
    prepared = Prepared(sa.select(devices.c.pointer).where(devices.c.device_id.in_(sa.bindparam("ids", expanding=True))))
    with lg._store.engine.connect() as connection, pytest.raises(TypeError, match="expanding IN"):
        prepared.rows(connection, ids=["device-A"])


def test_a_question_leaves_no_transaction_open_and_postgres_plans_without_jit(lg: IdentityLedger, backend: str) -> None:
    """BEGIN and ROLLBACK would be two round trips per question on PostgreSQL; JIT, on tables without
    statistics, compiled a past lookup for 12 ms."""
    lg.ingest([event("device-A")])
    devices = history.LIVE.devices
    with lg._store.read_engine.connect() as connection:
        pointer = Prepared(sa.select(devices.c.pointer).where(devices.c.device_id == sa.bindparam("device_id")))
        assert pointer.scalar(connection, device_id="device-A") is not None
        driver = connection.connection.dbapi_connection
        if backend == "postgres":
            assert driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            assert Prepared(sa.select(sa.func.current_setting("jit"))).scalar(connection) == "off"
        else:
            assert not driver.in_transaction
