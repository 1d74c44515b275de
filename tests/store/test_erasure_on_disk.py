"""A forgotten person cannot be read back from the database's files (docs/privacy.md).

SQLite: the database file and its WAL, free pages included. PostgreSQL: every relation file of
the ledger's schema (tables, indexes, their TOAST tables and TOAST indexes, every segment and
fork), read after a CHECKPOINT with `pg_read_binary_file` (the test user is a superuser), both
the files the relations have after the job and those they had before it (a file a rewrite left
behind is still in the data directory until the next checkpoint unlinks it).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from ledger import IdentityLedger
from ledger.store.backends import reclaiming
from tests.helpers import Clock, connected, engine_for, event

#: The victim's distinctive values: every one must be gone from the files after the job ...
VICTIM = {"user_id": "victim.u9k3@example.org", "device_id": "dev-victim-p4r8",
          "email": "victim.mail.x2w7@example.com", "label": "evlabel-victim-j5h1"}
#: ... and values that take the victim's events to PostgreSQL's TOAST table (random, so not compressed away).
_random = random.Random(29)
TOASTED = [f"toast-victim-q3z6-{n}-" + "".join(_random.choice("0123456789abcdef") for _ in range(900))
           for n in range(5)]
SHARED = "dev-shared-tablet-x1"
OTHERS = 30


def other(number: int) -> dict[str, str]:
    return {"user_id": f"other{number:02d}.k8@example.org", "device_id": f"dev-other{number:02d}-m2",
            "email": f"other{number:02d}.mail@example.com"}


def ingest_everyone(lg: IdentityLedger) -> None:
    """The victim's calls are mixed with everyone else's, so their rows share pages with rows that stay."""
    for round_ in range(12):
        calls = [event(VICTIM["device_id"], VICTIM["user_id"],
                       event_properties={"label": VICTIM["label"], "round": round_,
                                         **{f"blob{n}": blob for n, blob in enumerate(TOASTED)}},
                       user_properties={"$set": {"email": VICTIM["email"]}})]
        for number in range(OTHERS):
            person = other(number)
            calls.append(event(person["device_id"], person["user_id"], event_properties={"round": round_},
                               user_properties={"$set": {"email": person["email"]}}))
        calls.append(event(SHARED, VICTIM["user_id"] if round_ % 2 else other(0)["user_id"]))
        lg.ingest(calls)
    lg.identify([{"user_id": VICTIM["user_id"], "device_id": VICTIM["device_id"],
                  "user_properties": {"$set": {"email": VICTIM["email"]}}}])


def _relations(connection: sa.Connection, schema: str) -> list[str]:
    """The data files of every relation of the schema, with their TOAST tables and TOAST indexes."""
    return list(connection.execute(sa.text(
        "WITH own AS (SELECT c.oid, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = :schema), "
        "toast AS (SELECT reltoastrelid AS oid FROM own WHERE reltoastrelid <> 0), "
        "toast_index AS (SELECT indexrelid AS oid FROM pg_index WHERE indrelid IN (SELECT oid FROM toast)) "
        "SELECT DISTINCT pg_relation_filepath(oid) FROM "
        "(SELECT oid FROM own UNION SELECT oid FROM toast UNION SELECT oid FROM toast_index) everything "
        "WHERE pg_relation_filepath(oid) IS NOT NULL"), {"schema": schema}).scalars())


def _read_files(connection: sa.Connection, paths: list[str]) -> bytes:
    """Every segment (`path`, `path.1`, ...) and fork of each relation file; missing files are skipped."""
    read = sa.text("SELECT pg_read_binary_file(CAST(:path AS text), 0, file.size, true) "
                   "FROM pg_stat_file(CAST(:path AS text), true) file")
    contents = []
    for path in paths:
        for fork in ("", "_fsm", "_vm", "_init"):
            segment = 0
            while (data := connection.execute(read, {"path": path + fork + (f".{segment}" if segment else "")})
                   .scalar()) is not None:
                contents.append(bytes(data))
                segment += 1
    return b"".join(contents)


class Files:
    """The ledger's files as they are on disk, and (PostgreSQL) the relation files seen before."""

    def __init__(self, lg: IdentityLedger) -> None:
        self._lg = lg
        self._seen: set[str] = set()

    def read(self) -> bytes:
        url = sa.engine.make_url(self._lg.url)
        if url.get_backend_name() == "sqlite":
            path = url.database or ""
            return b"".join(open(name, "rb").read() for name in (path, path + "-wal", path + "-journal")
                            if os.path.exists(name))
        with connected(self._lg.url) as connection:
            connection.execute(sa.text("CHECKPOINT"))  # what is in shared buffers goes to the files
            self._seen.update(_relations(connection, url.query.get("schema", "public")))
            return _read_files(connection, sorted(self._seen))


def test_a_forgotten_person_cannot_be_read_from_the_database_files(lg: IdentityLedger) -> None:
    ingest_everyone(lg)
    files = Files(lg)
    victim = [*VICTIM.values(), *(blob[:40] for blob in TOASTED)]
    stayers = [value for number in range(OTHERS) for value in other(number).values()]
    before = files.read()
    assert [value for value in victim if value.encode() not in before] == []  # the search can find them
    job = lg.forget(user_ids=[VICTIM["user_id"]], requester="dpo@example.org", now=True)
    assert job["status"] == "done"
    after = files.read()
    assert {value: after.count(value.encode()) for value in victim if value.encode() in after} == {}
    assert [value for value in stayers if value.encode() not in after] == []  # the search can fail
    assert lg.resolve(user_id=other(7)["user_id"]) is not None and lg.resolve(user_id=VICTIM["user_id"]) is None


def test_people_tracked_after_the_job_are_stored_and_read_as_usual(lg: IdentityLedger) -> None:
    """The rewritten relations keep working: positions, indexes and sequences go on where they were."""
    ingest_everyone(lg)
    position = lg.position
    lg.forget(user_ids=[VICTIM["user_id"]], requester="dpo@example.org", now=True)
    lg.ingest([event("dev-after-job-1", "after.job@example.org")])
    assert lg.position > position + 1
    found = lg.resolve(user_id="after.job@example.org")
    assert found is not None and lg.resolve(device_id="dev-after-job-1") == found
    assert len(lg.timeline(found.amplitude_id)) == 1


def test_rekeying_leaves_no_guessable_stored_key_in_the_files(new_url: Callable[[], str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`rekey` rewrites every stored key in place: the old unkeyed ones (uuid5 of a user ID, which a
    dictionary attack finds) must not stay in free space either."""
    import ledger.write_context
    from ledger.domain.keys import UNKEYED

    url = new_url()
    monkeypatch.setattr(ledger.write_context, "open_keys", lambda *_args, **_kwargs: UNKEYED)  # as before keys existed
    with IdentityLedger(url, clock=Clock()) as old:
        old.ingest([event(VICTIM["device_id"], VICTIM["user_id"]), event(other(1)["device_id"], None)])
    monkeypatch.undo()
    unkeyed = [UNKEYED.user(VICTIM["user_id"]), UNKEYED.device(VICTIM["device_id"])]
    with IdentityLedger(url, clock=Clock(1_700_000_001_000)) as lg:
        files = Files(lg)
        before = files.read()
        assert all(key.bytes in before or key.hex.encode() in before for key in unkeyed)
        lg.rekey()
        after = files.read()
        assert [key for key in unkeyed if key.bytes in after or key.hex.encode() in after] == []
        assert lg.resolve(user_id=VICTIM["user_id"]) is not None


def _hold_a_snapshot(lg: IdentityLedger, isolation: str = "REPEATABLE READ") -> sa.Connection:
    """A reader in the middle of a transaction that began before the job: it may still see the person
    (REPEATABLE READ), or holds a table it read (READ COMMITTED, between statements)."""
    connection = engine_for(lg.url).connect()
    if lg.diagnostics().backend == "postgresql":
        connection.execute(sa.text(f"SET TRANSACTION ISOLATION LEVEL {isolation}"))
    else:
        connection.exec_driver_sql("BEGIN")  # pysqlite opens no transaction for a SELECT by itself
    connection.execute(sa.text("SELECT count(*) FROM ledger_identities")).scalar()
    return connection


def _forgotten(lg: IdentityLedger) -> int:
    with connected(lg.url) as connection:
        return int(connection.execute(sa.text("SELECT count(*) FROM ledger_forgotten")).scalar() or 0)


def test_the_files_are_rewritten_only_once_older_readers_are_done(lg: IdentityLedger) -> None:
    """A rewrite keeps every row version an open snapshot may see: the job waits for older readers."""
    ingest_everyone(lg)
    files = Files(lg)
    files.read()
    reader = _hold_a_snapshot(lg)
    job = threading.Thread(target=lambda: lg.forget(user_ids=[VICTIM["user_id"]], requester="dpo", now=True))
    job.start()
    while not _forgotten(lg):  # the job's transaction has committed: it now waits for the reader
        time.sleep(0.01)
    reader.close()
    job.join(timeout=120)
    assert not job.is_alive()
    after = files.read()
    assert [value for value in VICTIM.values() if value.encode() in after] == []


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "READ COMMITTED"])
def test_a_job_says_so_when_an_older_reader_kept_it_from_rewriting(lg: IdentityLedger, isolation: str, clock: Clock,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """It gives up after a while, never queueing every query behind a rewrite that waits for a lock."""
    ingest_everyone(lg)
    lg.forget(user_ids=[VICTIM["user_id"]], requester="dpo")
    clock.now += 24 * 3600 * 1000  # the job's day has come
    if lg.diagnostics().backend == "postgresql":
        monkeypatch.setattr(reclaiming, "REWRITE_WAIT", 0.5)
        monkeypatch.setattr(reclaiming, "LOCK_WAIT", 0.05)
    else:
        lg._context.writer._connection.execute("PRAGMA busy_timeout = 200")
    reader = _hold_a_snapshot(lg, isolation)
    try:
        [ran] = lg.run_deletions()
    finally:
        reader.close()
    assert ran.reclaimed is False and lg.resolve(user_id=VICTIM["user_id"]) is None
