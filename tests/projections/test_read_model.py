"""One read model: the live `resolve` (the write side's cache) answers what the read model answers, and reads
never write (they answer while another writer holds the write lock)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import IdentityLedger
from ledger.errors import LedgerError
from tests.helpers import Clock, engine_for, event

DEVICES = [f"device-{n}" for n in range(4)]
USERS = [f"user-{n}" for n in range(3)]

calls = st.fixed_dictionaries({
    "device_id": st.sampled_from(DEVICES),
    "user_id": st.one_of(st.none(), st.sampled_from(USERS)),
    "event_type": st.sampled_from(["view", "$identify"]),
    "user_properties": st.one_of(st.none(), st.fixed_dictionaries(
        {"$set": st.dictionaries(st.sampled_from("ab"), st.integers(0, 3), min_size=1, max_size=2)})),
    "groups": st.one_of(st.none(), st.fixed_dictionaries({"team": st.sampled_from(["red", "blue"])})),
}).map(lambda call: {key: value for key, value in call.items() if value is not None})
steps = st.lists(st.one_of(
    st.tuples(st.just("ingest"), st.lists(calls, min_size=1, max_size=4)),
    st.tuples(st.just("retract"), st.sampled_from(USERS)),
    st.tuples(st.just("forget"), st.sampled_from(USERS)),
    st.tuples(st.just("map"), st.tuples(st.sampled_from(USERS), st.sampled_from(USERS))),
    st.tuples(st.just("unmap"), st.sampled_from(USERS)),
), min_size=1, max_size=10)


def apply(writer: IdentityLedger, kind: str, what: Any) -> None:
    try:
        if kind == "ingest":
            writer.ingest(what, min_id_length=1)
        elif kind == "retract":
            writer.retract_user_id(what, reason="test", requester="oracle")
        elif kind == "forget":
            writer.forget(user_ids=[what], requester="oracle", now=True, ignore_invalid_id=True)
        elif kind == "map":
            writer.map_user(*what)
        else:
            writer.unmap_user(what)
    except LedgerError:
        pass  # refused (nothing to retract, forget or map): stores nothing, as tests of that elsewhere show


def assert_same_answers(reader: IdentityLedger) -> None:
    """Every device and user resolved through the cache path equals the read model's answer."""
    for device_id in DEVICES:
        assert reader.resolve(device_id=device_id) == reader.read_model.resolve(device_id=device_id), device_id
    for user_id in USERS:
        assert reader.resolve(user_id=user_id) == reader.read_model.resolve(user_id=user_id), user_id


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=steps, writing_in=st.lists(st.booleans(), min_size=10, max_size=10))
def test_the_cache_path_answers_what_the_read_model_answers(new_url: Callable[[], str], history: list[tuple[str, Any]],
                                                           writing_in: list[bool]) -> None:
    """From the process that wrote (its cache changed with each write) and from another one (its cache
    followed the log), after every step of a random history; the writer of each step is drawn too."""
    url = new_url()
    clock = Clock()
    with IdentityLedger(url, clock=clock) as first, IdentityLedger(url, clock=clock) as second:
        for (kind, what), in_first in zip(history, writing_in, strict=False):
            apply(first if in_first else second, kind, what)
            assert_same_answers(first)
            assert_same_answers(second)


@contextmanager
def write_lock_held(url: str) -> Iterator[None]:
    """Another writer holds the database's write lock (SQLite) or the read side's position (PostgreSQL)."""
    engine = engine_for(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.execute(sa.text("LOCK TABLE ledger_projection_positions IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            connection.rollback()
    engine.dispose()


def test_reads_answer_while_another_writer_holds_the_lock(open_ledger: Callable[..., IdentityLedger],
                                                          new_url: Callable[[], str]) -> None:
    """A reader that has not seen the other process's writes reads them without catching anything up
    (a catch-up would wait for the lock): the writer projected them in its own commit."""
    url = new_url()
    reader = open_ledger(url)
    writer = open_ledger(url)
    writer.ingest([event("device-a", "user-a"), event("device-b", "user-a")])
    answers: list[Any] = []

    def read() -> None:
        person = reader.resolve(user_id="user-a")
        answers.extend([person, reader.read_model.resolve(device_id="device-b"), reader.timeline(1),
                        reader.stats(), reader.lag()])

    with write_lock_held(url):
        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), "a read waited for the write lock"
    person, by_device, timeline, stats, lag = answers
    assert person is not None and person.device_ids == ["device-a", "device-b"] and by_device == person
    assert len(timeline) == 2 and stats.events == 2 and lag == 0
