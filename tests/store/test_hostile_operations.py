"""What an operator does must not break the ledger: rebuilds, many processes, old schemas, deleted files."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ledger import IdentityLedger
from ledger.errors import LedgerFileReplaced, LedgerInUse, SchemaTooNew
from ledger.server.credentials import Credentials, ServerConfigError
from ledger.store import aggregate_cache
from projections import tables as t
from projections.runner import SCHEMA
from tests.cli_helpers import assert_one_line_error
from tests.cli_helpers import ledger as run_ledger
from tests.conftest import BACKENDS, fresh_url
from tests.helpers import connected, engine_for, event

# -- 5. rebuild beside a running writer ------------------------------------------------------------


def test_rebuild_refuses_while_another_writer_has_the_ledger_open(open_ledger: Callable[..., IdentityLedger],
                                                                  new_url: Callable[[], str]) -> None:
    url = new_url()
    server = open_ledger(url)
    server.ingest([event("device-A", "user-A")])
    operator = open_ledger(url)
    with pytest.raises(LedgerInUse, match=r"another process .* has this ledger open"):
        operator.rebuild()
    server.ingest([event("device-B")])  # the writer is untouched by the refusal
    assert server.stats().events == 2
    server.close()
    assert operator.rebuild() == operator.position  # alone now: it runs


def test_ledger_rebuild_command_says_why_it_refuses(open_ledger: Callable[..., IdentityLedger], backend: str,
                                                    new_url: Callable[[], str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    url = new_url()
    open_ledger(url).ingest([event("device-A")])
    assert_one_line_error(run_ledger(capsys, "rebuild", "--db", url), 2, "cannot rebuild", "ledger serve")


# -- 6. many processes opening one ledger at once ----------------------------------------------------


def _open_and_write(url: str, barrier: Any, index: int) -> None:
    barrier.wait(30)
    with IdentityLedger(url) as lg:
        lg.ingest([event(f"device-proc-{index}")])


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_processes_can_create_one_ledger_at_once(backend: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    processes = 4
    url, drop = fresh_url(backend, tmp_path_factory)
    context = multiprocessing.get_context("spawn")  # fork in a process with threads may deadlock the child
    try:
        barrier = context.Barrier(processes)
        workers = [context.Process(target=_open_and_write, args=(url, barrier, index)) for index in range(processes)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0] * processes
        with IdentityLedger(url) as lg:
            assert lg.stats().events == processes
    finally:
        drop()


# -- 7. schema version -----------------------------------------------------------------------------


def test_an_older_read_side_is_rebuilt_on_open(open_ledger: Callable[..., IdentityLedger],
                                               new_url: Callable[[], str]) -> None:
    url = new_url()
    with IdentityLedger(url) as lg:
        lg.ingest([event("device-old", "user-old", event_properties={"a": 1})])
        expected = lg.timeline(1)
    engine = engine_for(url)
    with engine.begin() as connection:  # as release 0.1.0 left it: an older version, another timeline shape
        connection.execute(t.positions.update().where(t.positions.c.name == SCHEMA).values(position=1))
        connection.execute(sa.text("CREATE TABLE ledger_timeline (position BIGINT PRIMARY KEY, amplitude_id BIGINT)"))
        t.devices.drop(connection)
    engine.dispose()
    lg = open_ledger(url)
    assert lg.timeline(1) == expected
    lg.ingest([event("device-old", event_properties={"b": 2})])
    assert [e.event_properties for e in lg.timeline(1)] == [{"a": 1}, {"b": 2}]
    with connected(lg.url) as connection:
        version = sa.select(t.positions.c.position).where(t.positions.c.name == SCHEMA)
        assert connection.execute(version).scalar() == t.SCHEMA_VERSION
        assert not sa.inspect(connection).has_table("ledger_timeline")


def test_a_read_side_from_a_newer_release_is_refused(open_ledger: Callable[..., IdentityLedger],
                                                     new_url: Callable[[], str]) -> None:
    url = new_url()
    with IdentityLedger(url) as lg:
        lg.ingest([event("device-new")])
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(t.positions.update().where(t.positions.c.name == SCHEMA)
                           .values(position=t.SCHEMA_VERSION + 1))
    engine.dispose()
    with pytest.raises(SchemaTooNew, match="upgrade identity-ledger"):
        IdentityLedger(url)


# -- 8. bounded caches -----------------------------------------------------------------------------


@pytest.mark.parametrize(("cache_size", "bound"), [(50, 50), (None, 30)])
def test_lookups_of_unknown_ids_do_not_grow_memory(open_ledger: Callable[..., IdentityLedger],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   cache_size: int | None, bound: int) -> None:
    monkeypatch.setattr(aggregate_cache, "MAX_ABSENT", 30)  # stands for 10,000, beside the default cache size
    lg = open_ledger(cache_size=cache_size) if cache_size else open_ledger()
    lg.ingest([event("device-known", "user-known")])
    for n in range(300):
        assert lg.resolve(user_id=f"user-unknown-{n}") is None
        assert lg.resolve(device_id=f"device-unknown-{n}") is None
    assert len(lg._context.cache._absent) <= bound
    assert lg.resolve(user_id="user-known") is not None


# -- 10. the SQLite file deleted under a running writer ----------------------------------------------


def test_a_deleted_sqlite_file_is_noticed_before_anything_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with IdentityLedger(f"sqlite:///{path}") as lg:
        lg.ingest([event("device-A")])
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        with pytest.raises(LedgerFileReplaced, match="deleted or replaced"):
            lg.ingest([event("device-B")])
        with pytest.raises(LedgerFileReplaced):
            lg.position  # noqa: B018 - what /healthz asks


def test_a_replaced_sqlite_file_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with IdentityLedger(f"sqlite:///{path}") as lg:
        lg.ingest([event("device-A")])
        os.rename(path, tmp_path / "moved.db")
        path.write_bytes(b"")
        with pytest.raises(LedgerFileReplaced):
            lg.ingest([event("device-B")])


# -- 12. a secret key of real strength ---------------------------------------------------------------


@pytest.mark.parametrize("secret", ["s", " " * 20, "fifteen-chars!!"])
def test_a_weak_secret_key_is_refused_with_the_reason(secret: str) -> None:
    with pytest.raises(ServerConfigError, match=r"at least 16 characters and not blank.*can be guessed"):
        Credentials.configured(["api-key-1"], secret)
    assert Credentials.configured(["api-key-1"], "sixteen-chars-ok").secret_key == "sixteen-chars-ok"


@pytest.mark.parametrize(("secret", "complaint"), [
    ("api-key-1 ", "must differ from every API key and not contain one"),
    ("API-KEY-1", "must differ from every API key and not contain one"),
    ("my-API-KEY-1-and-more-words", "must differ from every API key and not contain one"),
    ("my api-key-1 and more words", "must differ from every API key and not contain one"),
    ("aaaaaaaaaaaaaaaa", "at least 10 different characters"),
    ("abababababababababababab", "at least 10 different characters"),
])
def test_a_secret_key_holding_an_api_key_or_repetitive_is_refused_saying_how_to_make_one(
        secret: str, complaint: str) -> None:
    with pytest.raises(ServerConfigError, match=complaint) as refused:
        Credentials.configured(["api-key-1"], secret)
    assert 'secrets.token_urlsafe(32)' in str(refused.value)
