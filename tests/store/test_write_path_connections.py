"""The write path's own connections: the write transaction (pipelined on PostgreSQL for small
requests) and the direct reads before it. What a pipelined transaction promises is what a plain
one does: committed when it returns, nothing stored when a key is taken, exact row counts."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from ledger.store.database import Store, open_store
from ledger.store.direct import DirectReads
from ledger.store.writer import APPLIED, Conflict, Writer
from tests.conftest import POSTGRES_URL, fresh_url


@pytest.fixture
def store(new_url: Callable[[], str]) -> Iterator[Store]:
    opened = open_store(new_url())
    yield opened
    opened.close()


@pytest.fixture
def writer(store: Store) -> Iterator[Writer]:
    opened = Writer(store)
    yield opened
    opened.close()


def applied_rows(store: Store) -> list[tuple[str, int]]:
    """Read through SQLAlchemy, another connection: what is committed, not what the writer holds."""
    with store.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(f"SELECT stream, sequence FROM {APPLIED} "
                                                                  "ORDER BY stream"))]


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_transaction_is_committed_when_it_returns(store: Store, writer: Writer, pipelined: bool) -> None:
    with writer.transaction(pipelined) as tx:
        tx.executemany(f"INSERT INTO {APPLIED} (stream, sequence) VALUES (?, ?)", [("a", 1), ("b", 2)])
        tx.execute(f"UPDATE {APPLIED} SET sequence = ? WHERE stream = ?", (5, "b"))
    assert applied_rows(store) == [("a", 1), ("b", 5)]


@pytest.mark.parametrize("pipelined", [True, False])
def test_a_taken_key_is_a_conflict_that_stores_nothing_and_the_writer_goes_on(store: Store, writer: Writer,
                                                                              pipelined: bool) -> None:
    insert = f"INSERT INTO {APPLIED} (stream, sequence) VALUES (?, ?)"
    with writer.transaction(pipelined) as tx:
        tx.execute(insert, ("a", 1))
    with pytest.raises(Conflict):
        with writer.transaction(pipelined) as tx:
            tx.execute(insert, ("b", 1))
            tx.execute(insert, ("a", 2))
            tx.execute(f"UPDATE {APPLIED} SET sequence = ? WHERE stream = ?", (9, "a"))
    assert applied_rows(store) == [("a", 1)]
    with writer.transaction(pipelined) as tx:
        tx.execute(insert, ("c", 3))
    assert applied_rows(store) == [("a", 1), ("c", 3)]


@pytest.mark.parametrize("pipelined", [True, False])
def test_row_counts_and_query_answers_are_exact_mid_transaction(writer: Writer, pipelined: bool) -> None:
    with writer.transaction(pipelined) as tx:
        tx.executemany(f"INSERT INTO {APPLIED} (stream, sequence) VALUES (?, ?)", [("a", 1), ("b", 1)])
        tx.execute(f"UPDATE {APPLIED} SET sequence = ? WHERE sequence = ?", (2, 1))
        assert tx.changed() == 2
        tx.execute(f"UPDATE {APPLIED} SET sequence = ? WHERE stream = ?", (3, "nobody"))
        assert tx.changed() == 0
        assert tx.query(f"SELECT stream FROM {APPLIED} WHERE sequence = ? ORDER BY stream", (2,)) == [("a",), ("b",)]


def test_direct_reads_see_another_connection_commit_at_once(store: Store, writer: Writer) -> None:
    reads = DirectReads(store)  # `writer` made the write path's tables
    try:
        assert reads.rows(f"SELECT COUNT(*) FROM {APPLIED}") == [(0,)]
        with store.engine.begin() as connection:
            connection.execute(sa.text(f"INSERT INTO {APPLIED} (stream, sequence) VALUES ('a', 1)"))
        assert reads.rows(f"SELECT COUNT(*) FROM {APPLIED}") == [(1,)]
    finally:
        reads.close()


if POSTGRES_URL:  # only a server can drop a connection; .ci/run's main pass sets the URL

    def test_direct_reads_connect_again_after_the_server_dropped_them(tmp_path_factory: pytest.TempPathFactory) -> None:
        url, drop = fresh_url("postgres", tmp_path_factory)
        store = open_store(url)
        reads = DirectReads(store)
        try:
            [(pid,)] = reads.rows("SELECT pg_backend_pid()")
            with store.engine.begin() as connection:
                connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            [(again,)] = reads.rows("SELECT pg_backend_pid()")
            assert again != pid
        finally:
            reads.close()
            store.close()
            drop()
