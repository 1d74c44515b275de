"""What a backend must do: every method of `ledger.store.backends.base.Backend`, exercised on a real database.

A new backend passes this suite before anything else: subclass `BackendContract` in a
`test_backend_<name>.py` module (named `Test...`), give it `new_url` (fresh databases of the backend,
dropped afterwards) and `unreachable_url`, and run it. The ledger's own suite then runs on it
through `tests/conftest.py`'s `backend` fixture.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from ledger.errors import DatabaseUnavailable
from ledger.store.backends import BadDatabaseURL, backend_for
from ledger.store.backends.base import COPY_FROM, Backend, Row
from ledger.store.database import Store, open_store, parse_url
from ledger.store.direct import DirectReads
from ledger.store.writer import APPLIED, RECEIPTS, Conflict, Writer


def _rows(stream: uuid.UUID, versions: range, topic: str = "Test.Happened") -> list[Row]:
    return [(stream, version, topic, f"state {version}".encode()) for version in versions]


class _Taken(Exception):
    """A lock was found taken (raised by the test's `pause`)."""


def _refuse(holder: str) -> None:
    raise _Taken(holder)


class BackendContract:
    """The contract suite: a subclass provides `new_url` and `unreachable_url` for its backend."""

    #: The backend's class; the URLs the subclass makes must select it.
    backend_class: type[Backend]

    @pytest.fixture
    def new_url(self) -> Iterator[Callable[[], str]]:
        raise NotImplementedError("the backend's subclass makes URLs of fresh databases")

    @pytest.fixture
    def unreachable_url(self) -> str:
        raise NotImplementedError("the backend's subclass names a database that cannot be opened")

    @pytest.fixture
    def store(self, new_url: Callable[[], str]) -> Iterator[Store]:
        opened = open_store(new_url())
        yield opened
        opened.close()

    @pytest.fixture
    def writer(self, store: Store) -> Iterator[Writer]:
        opened = Writer(store)
        yield opened
        opened.close()

    @staticmethod
    def append(writer: Writer, rows: list[Row], *, pipelined: bool = False) -> list[int]:
        with writer.transaction(pipelined) as tx:
            return tx.insert_events(rows)

    @staticmethod
    def log(store: Store) -> list[tuple[int, uuid.UUID, int, str, bytes]]:
        """The whole log as (position, originator ID, version, topic, state), read through SQLAlchemy."""
        backend = store.backend
        with store.engine.connect() as connection:
            rows = connection.execute(sa.text(
                f"SELECT {backend.position}, originator_id, originator_version, topic, state "
                f"FROM {store.events_table} ORDER BY {backend.position}")).all()
        return [(row[0], row[1] if isinstance(row[1], uuid.UUID) else uuid.UUID(hex=row[1]), row[2], row[3],
                 bytes(row[4])) for row in rows]

    # -- picking and opening ----------------------------------------------------------------

    def test_its_urls_select_it(self, new_url: Callable[[], str]) -> None:
        assert type(backend_for(parse_url(new_url()))) is self.backend_class

    def test_an_unknown_database_is_refused(self) -> None:
        with pytest.raises(BadDatabaseURL):
            backend_for(parse_url("mysql://somewhere/db"))

    def test_it_opens_a_store_whose_engine_reaches_the_log(self, store: Store) -> None:
        assert type(store.backend) is self.backend_class
        assert sa.inspect(store.engine).has_table(store.events_table)

    def test_an_unreachable_database_is_unavailable(self, unreachable_url: str) -> None:
        with pytest.raises(DatabaseUnavailable):
            open_store(unreachable_url)

    def test_its_identity_and_key_path_tell_databases_apart(self, new_url: Callable[[], str]) -> None:
        first, second = open_store(new_url()), open_store(new_url())
        try:
            backend = first.backend.location
            assert backend.identity(parse_url(first.url)) == backend.identity(parse_url(first.url))
            assert backend.identity(parse_url(first.url)) != backend.identity(parse_url(second.url))
            assert backend.key_path(first) != backend.key_path(second)
            for store in (first, second):
                path = backend.local_file(parse_url(store.url))
                assert path is None or path == store.env.get("SQLITE_DBNAME")
        finally:
            first.close()
            second.close()

    # -- locks ------------------------------------------------------------------------

    def test_setup_lock_runs_its_block_and_is_released(self, store: Store) -> None:
        parsed = parse_url(store.url)
        ran = []
        for turn in range(2):
            with store.backend.location.setup_lock(parsed):
                ran.append(turn)
        assert ran == [0, 1]

    def test_shared_locks_coexist_and_exclude_an_exclusive_one(self, store: Store) -> None:
        backend = store.backend.location
        first, second = backend.shared_lock(store), backend.shared_lock(store)
        try:
            first.check_file()
            assert not first.try_exclusive()  # the second holds it shared
            second.close()
            assert first.try_exclusive()
            first.back_to_shared()
            third = backend.shared_lock(store)  # shared again: another opener gets in, and keeps it shared
            try:
                assert not third.try_exclusive()
            finally:
                third.close()
        finally:
            first.close()
            second.close()

    def test_the_project_lock_has_one_holder(self, store: Store) -> None:
        parsed = parse_url(store.url)
        with store.backend.location.project_lock(parsed, _refuse):
            failed: list[BaseException] = []

            def second() -> None:
                try:
                    with store.backend.location.project_lock(parsed, _refuse):
                        pass
                except _Taken as error:
                    failed.append(error)

            thread = threading.Thread(target=second)
            thread.start()
            thread.join(30)
            assert len(failed) == 1
        with store.backend.location.project_lock(parsed, _refuse):
            pass  # released

    # -- connections and statements -----------------------------------------------------

    def test_a_read_connection_runs_driver_statements(self, store: Store, writer: Writer) -> None:
        connection = store.backend.read_connection(store)
        try:
            sql = store.backend.driver_sql(f"SELECT COUNT(*) FROM {APPLIED} WHERE stream = ?")
            assert list(connection.execute(sql, ("nobody",)).fetchall()) == [(0,)]
        finally:
            connection.close()

    def test_stream_ids_find_their_rows(self, store: Store, writer: Writer) -> None:
        stream = uuid.uuid4()
        self.append(writer, _rows(stream, range(1, 4)))
        reads = DirectReads(store)
        try:
            sql = store.backend.driver_sql(f"SELECT originator_version FROM {store.events_table} "
                                           "WHERE originator_id = ? ORDER BY originator_version")
            assert reads.rows(sql, (store.backend.stream_id(stream),)) == [(1,), (2,), (3,)]
        finally:
            reads.close()

    def test_select_in_finds_every_value_of_a_long_list(self, store: Store, writer: Writer) -> None:
        keys = [uuid.uuid4().bytes for _ in range(2500)]
        with writer.transaction() as tx:
            tx.executemany(f"INSERT INTO {RECEIPTS} (key, server_time) VALUES (?, ?)",
                           [(key, number) for number, key in enumerate(keys)])
        reads = DirectReads(store)
        try:
            asked = keys[::2] + [uuid.uuid4().bytes for _ in range(10)]
            found = store.backend.select_in(reads.rows, f"SELECT key, server_time FROM {RECEIPTS} WHERE key {{in}}",
                                            asked)
        finally:
            reads.close()
        assert sorted((bytes(key), time) for key, time in found) == sorted(
            (key, number) for number, key in enumerate(keys) if number % 2 == 0)

    # -- the write transaction ------------------------------------------------------------

    @pytest.mark.parametrize("pipelined", [False, True])
    def test_appended_rows_get_consecutive_positions_in_order(self, store: Store, writer: Writer,
                                                              pipelined: bool) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        positions = self.append(writer, _rows(first, range(1, 4)), pipelined=pipelined)
        more = self.append(writer, _rows(second, range(1, 3)) + _rows(first, range(4, 5)), pipelined=pipelined)
        assert positions == list(range(positions[0], positions[0] + 3))
        assert more == list(range(positions[-1] + 1, positions[-1] + 4))
        assert self.log(store) == [
            (position, stream, version, "Test.Happened", f"state {version}".encode())
            for position, (stream, version) in zip(positions + more, [(first, 1), (first, 2), (first, 3),
                                                                      (second, 1), (second, 2), (first, 4)],
                                                   strict=True)]

    def test_a_bulk_append_goes_the_same_way(self, store: Store, writer: Writer) -> None:
        stream = uuid.uuid4()
        with writer.transaction() as tx:
            positions = tx.insert_events(_rows(stream, range(1, COPY_FROM + 51)))
        assert positions == list(range(positions[0], positions[0] + COPY_FROM + 50))
        assert [row[2] for row in self.log(store)] == list(range(1, COPY_FROM + 51))

    def test_a_taken_version_conflicts_and_stores_nothing(self, store: Store, writer: Writer) -> None:
        stream = uuid.uuid4()
        self.append(writer, _rows(stream, range(1, 3)))
        with pytest.raises(Conflict):
            self.append(writer, _rows(uuid.uuid4(), range(1, 2)) + _rows(stream, range(2, 3)))
        assert [row[2] for row in self.log(store)] == [1, 2]
        assert self.append(writer, _rows(stream, range(3, 4)))  # the connection is usable again

    def test_a_failed_transaction_rolls_back(self, store: Store, writer: Writer) -> None:
        with pytest.raises(RuntimeError), writer.transaction() as tx:
            tx.insert_events(_rows(uuid.uuid4(), range(1, 3)))
            raise RuntimeError("abandoned")
        assert self.log(store) == []

    def test_positions_are_never_handed_out_twice_after_an_erasure(self, store: Store, writer: Writer) -> None:
        stream = uuid.uuid4()
        positions = self.append(writer, _rows(stream, range(1, 4)))
        with writer.transaction() as tx:
            end = tx.latest()
            tx.execute(f"DELETE FROM {store.events_table} WHERE originator_id = ? AND originator_version > ?",
                       (store.backend.stream_id(stream), 1))
            again = tx.insert_events(_rows(uuid.uuid4(), range(1, 3)), after=end)
        assert end == positions[-1]
        assert min(again) > end

    def test_rows_read_for_update_lock_and_read(self, store: Store, writer: Writer) -> None:
        with writer.transaction() as tx:
            tx.execute(f"INSERT INTO {APPLIED} (stream, sequence) VALUES (?, ?)", ("s", 1))
            assert tx.query(f"SELECT sequence FROM {APPLIED} WHERE stream = ?{tx.locking}", ("s",)) == [(1,)]

    def test_a_copy_sink_inserts_its_rows(self, store: Store, writer: Writer) -> None:
        rows = [(uuid.uuid4().bytes, number) for number in range(COPY_FROM)]
        with writer.transaction() as tx:
            if tx.copy is None:  # `executemany` is as fast on this backend
                tx.executemany(f"INSERT INTO {RECEIPTS} (key, server_time) VALUES (?, ?)", rows)
            else:
                tx.copy(RECEIPTS, ("key", "server_time"), rows)
        with store.engine.connect() as connection:
            stored = connection.execute(sa.text(f"SELECT key, server_time FROM {RECEIPTS}")).all()
        assert sorted((bytes(key), time) for key, time in stored) == sorted(rows)

    def test_the_write_tables_are_made_once_and_kept(self, store: Store, writer: Writer) -> None:
        with writer.transaction() as tx:
            tx.execute(f"INSERT INTO {RECEIPTS} (key, server_time) VALUES (?, ?)", (b"k" * 16, 7))
        again = Writer(store)  # a second open prepares the tables again
        again.close()
        with store.engine.connect() as connection:
            assert connection.execute(sa.text(f"SELECT server_time FROM {RECEIPTS}")).all() == [(7,)]

    def test_erased_rows_are_reclaimed(self, store: Store, writer: Writer) -> None:
        stream = uuid.uuid4()
        self.append(writer, _rows(stream, range(1, 4)))
        with writer.transaction() as tx:
            tx.execute(f"DELETE FROM {store.events_table} WHERE originator_id = ?", (store.backend.stream_id(stream),))
            erased_in = tx.erasing()
        assert writer.reclaim([store.events_table, RECEIPTS], erased_in)
        assert self.log(store) == []
        assert self.append(writer, _rows(stream, range(1, 2)))  # the writer writes on afterwards

    # -- reads ----------------------------------------------------------------------

    @pytest.mark.parametrize("newest_first", [False, True])
    @pytest.mark.parametrize(("after", "stop", "limit"), [(0, 10**9, 100), (0, 10**9, 3), (4, 17, 3), (4, 17, 100),
                                                          (10, 12, 2), (30, 40, 5)])
    def test_stream_pages_hold_the_rows_within_bounds(self, store: Store, writer: Writer, newest_first: bool,
                                                      after: int, stop: int, limit: int) -> None:
        streams = [uuid.uuid4() for _ in range(3)]
        for version in range(1, 9):  # interleaved: each stream's positions grow with its versions
            self.append(writer, [(stream, version, "Test.Happened", f"{stream} {version}".encode())
                                 for stream in streams[:2] + streams[2:] * (version % 2)])
        log = self.log(store)
        asked = [store.backend.stream_id(stream) for stream in [*streams, uuid.uuid4()]]
        with store.engine.connect() as connection:
            pages = store.backend.stream_reads(store.events_table).pages(
                connection, asked, after=after, stop=stop, limit=limit, newest_first=newest_first)
        for stream, key in zip([*streams, None], asked, strict=True):
            wanted = [(position, state) for position, originator, _, _, state in log
                      if originator == stream and after < position <= stop]
            wanted = (wanted[::-1] if newest_first else wanted)[:limit]
            assert [(row[0], bytes(row[1])) for row in pages.get(key, [])] == wanted

    def test_index_names_list_the_schema_indexes(self, store: Store, writer: Writer) -> None:
        with store.engine.begin() as connection:
            connection.execute(sa.text(f"CREATE INDEX contract_index ON {APPLIED} (sequence)"))
            assert "contract_index" in {row[0] for row in connection.exec_driver_sql(store.backend.index_names)}

    def test_copy_through_inserts_on_a_read_side_connection(self, store: Store, writer: Writer) -> None:
        rows = [(f"stream {number}", number) for number in range(5)]
        with store.engine.begin() as connection:
            copy = store.backend.copy_through(connection)
            if copy is None:  # the read side inserts by `executemany` on this backend
                connection.exec_driver_sql(store.backend.driver_sql(
                    f"INSERT INTO {APPLIED} (stream, sequence) VALUES (?, ?)"), rows)
            else:
                copy(APPLIED, ("stream", "sequence"), rows)
        with store.engine.connect() as connection:
            assert sorted(connection.execute(sa.text(f"SELECT stream, sequence FROM {APPLIED}")).all()) == rows

    def test_updates_over_arrays_run_where_the_backend_has_them(self, store: Store, writer: Writer) -> None:
        with writer.transaction() as tx:
            tx.executemany(f"INSERT INTO {APPLIED} (stream, sequence) VALUES (?, ?)", [("a", 1), ("b", 2)])
            if tx.arrays:
                tx.execute(f"UPDATE {APPLIED} AS target SET sequence = source.value FROM "
                           "unnest(?::bigint[], ?::varchar[]) AS source(value, key) WHERE target.stream = source.key",
                           ([10, 20], ["a", "b"]))
            else:
                tx.executemany(f"UPDATE {APPLIED} SET sequence = ? WHERE stream = ?", [(10, "a"), (20, "b")])
            assert tx.query(f"SELECT stream, sequence FROM {APPLIED} ORDER BY stream") == [("a", 10), ("b", 20)]

