"""The backend contract on SQLite (`tests/store/backend_contract.py`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.store.backends.sqlite import SQLiteBackend
from tests.store.backend_contract import BackendContract


class TestSQLiteBackend(BackendContract):
    backend_class = SQLiteBackend

    @pytest.fixture
    def new_url(self, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], str]:  # type: ignore[override]
        return lambda: f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}"

    @pytest.fixture
    def unreachable_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'no such directory' / 'ledger.db'}"
