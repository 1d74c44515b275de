"""Opening databases: URLs, refusing to invent a ledger, and unreachable databases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import DatabaseUnavailable, IdentityLedger, LedgerNotFound
from ledger.store.backends import BadDatabaseURL
from tests.helpers import event


def test_create_false_refuses_to_invent_a_ledger(new_url: Callable[[], str]) -> None:
    url = new_url()
    with pytest.raises(LedgerNotFound):
        IdentityLedger(url, create=False)
    with IdentityLedger(url) as lg:
        lg.ingest([event("device-1")])
    with IdentityLedger(url, create=False) as again:
        assert again.stats().events == 1


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(LedgerNotFound):
        IdentityLedger(f"sqlite:///{tmp_path}/absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_unreachable_databases_fail_with_one_typed_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="Connection refused"):
        IdentityLedger("postgresql+psycopg://postgres@127.0.0.1:1/test")
    with pytest.raises(DatabaseUnavailable, match="unable to open database file"):
        IdentityLedger(f"sqlite:///{tmp_path}/no/such/dir/ledger.db")


@pytest.mark.parametrize("url", ["mysql://x/y", "not a url", "postgresql+psycopg://h/db?schema=bad;name"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(BadDatabaseURL):
        IdentityLedger(url)


def test_the_scratch_database_disappears_on_close() -> None:
    lg = IdentityLedger("sqlite://")
    lg.ingest([event("device-1")])
    scratch = lg._store.scratch_dir
    assert scratch is not None and Path(scratch).exists()
    lg.close()
    assert not Path(scratch).exists()
