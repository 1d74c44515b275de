"""PostgreSQL's pool pings a connection only when it sat idle: a dropped one is replaced before the question
runs, and one used a moment ago costs no extra round trip (`ledger.store.backends.idle_ping`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from ledger import IdentityLedger
from ledger.store.backends import idle_ping
from tests.conftest import POSTGRES_URL, fresh_url
from tests.helpers import event

if POSTGRES_URL:  # only a server can drop a connection; .ci/run's main pass sets the URL

    @pytest.fixture
    def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
        """Each ping sent, by the server process it went to; the idle time is short, so the test waits little."""
        monkeypatch.setattr(idle_ping, "PING_IDLE_S", 0.2)
        sent: list[int] = []
        ping = PGDialect_psycopg.do_ping

        def counted(self: PGDialect_psycopg, dbapi_connection: psycopg.Connection[object]) -> bool:
            sent.append(dbapi_connection.info.backend_pid)
            return bool(ping(self, dbapi_connection))

        monkeypatch.setattr(PGDialect_psycopg, "do_ping", counted)
        return sent

    @pytest.fixture
    def lg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityLedger]:
        url, drop = fresh_url("postgres", tmp_path_factory)
        ledger = IdentityLedger(url, key_file=str(tmp_path_factory.mktemp("keys") / "ledger.key"))
        try:
            yield ledger
        finally:
            ledger.close()
            drop()

    def _server_pid(lg: IdentityLedger) -> int:
        with lg._store.read_engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def test_a_connection_dropped_while_idle_is_replaced_before_the_question(
            lg: IdentityLedger, pings: list[int]) -> None:
        lg.ingest([event("device-A", "user-1")])
        pid = _server_pid(lg)
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.3)
        found = lg.read_model.resolve(device_id="device-A")  # the dropped connection, unpinged, would raise
        assert found is not None and found.user_id == "user-1"
        assert pid in pings and _server_pid(lg) != pid

    def test_a_connection_used_a_moment_ago_is_not_pinged(lg: IdentityLedger, pings: list[int]) -> None:
        lg.ingest([event("device-A")])
        assert lg.read_model.resolve(device_id="device-A") is not None
        pings.clear()
        for _ in range(5):
            assert lg.read_model.resolve(device_id="device-A") is not None
        assert pings == []
        time.sleep(0.3)
        assert lg.read_model.resolve(device_id="device-A") is not None
        assert len(pings) == 1
