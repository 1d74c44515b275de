"""The backend contract on PostgreSQL (`tests/store/backend_contract.py`), when LEDGER_TEST_POSTGRES_URL is set
(as `.ci/run` does; the session's header says which backends a run covers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ledger.store.backends.postgres import PostgresBackend
from tests.conftest import POSTGRES_URL, fresh_url
from tests.store.backend_contract import BackendContract

if POSTGRES_URL:

    class TestPostgresBackend(BackendContract):
        backend_class = PostgresBackend

        @pytest.fixture
        def new_url(self, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], str]]:
            drops: list[Callable[[], None]] = []

            def make() -> str:
                url, drop = fresh_url("postgres", tmp_path_factory)
                drops.append(drop)
                return url

            yield make
            for drop in drops:
                drop()

        @pytest.fixture
        def unreachable_url(self) -> str:
            return "postgresql+psycopg://postgres@127.0.0.1:1/test"
