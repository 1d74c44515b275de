"""The projector's updates, sent as one statement over arrays on PostgreSQL and row by row on SQLite,
leave the rows that applying the facts one by one would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.store.database import Store, open_store
from projections import tables as t
from projections.runner import Fact, ProjectionRunner


@pytest.fixture
def store(new_url: Callable[[], str]) -> Iterator[Store]:
    opened = open_store(new_url())
    yield opened
    opened.close()


def call(**fields: Any) -> dict[str, Any]:
    return {"user_id": None, "event_time": 1, "server_time": 1, "insert_id": None, **fields}


def amendment(**fields: Any) -> dict[str, Any]:
    return {"server_time": 2, "correction": "user-u", **fields}


FACTS: list[Fact] = [
    (1, "Identity.Created", call(amplitude_id=1, device_id="d1")),
    (2, "Device.Seen", call(amplitude_id=1, device_id="d1")),
    (3, "Identity.Created", call(amplitude_id=2, device_id="d2")),
    (4, "Device.Seen", call(amplitude_id=2, device_id="d2")),
    (5, "User.Bound", call(amplitude_id=1, device_id="d1", user_id="user-u")),
    (6, "User.Bound", call(amplitude_id=2, device_id="d2", user_id="user-w")),
    # d1 moves twice (the last move wins), d2 once
    (7, "Device.PointerMoved", call(amplitude_id=2, device_id="d1")),
    (8, "Device.PointerMoved", call(amplitude_id=1, device_id="d2")),
    (9, "Device.PointerMoved", call(amplitude_id=1, device_id="d1")),
    (10, "Identity.UserPropertiesUpdated", call(amplitude_id=1, device_id="d1", user_properties={"plan": "pro"})),
    (11, "Identity.UserPropertiesUpdated", call(amplitude_id=2, device_id="d2", user_properties={"plan": "free"})),
    # A correction releases user-u from 1 and a split-off person 3 takes it: user_id is unique,
    # so the release must reach the table first.
    (12, "Identity.Retired", amendment(amplitude_id=1, merged_into=None, user_id="user-u")),
    (13, "Identity.SplitOff", amendment(amplitude_id=3, user_id="user-u", user_properties={}, device_ids=["d1"],
                                        moved_before=[], tracked=[], identified=[], split_from=[1])),
]


@pytest.mark.parametrize("page_size", [len(FACTS), 3])
def test_updates_leave_the_rows_of_the_facts_applied_in_order(store: Store, page_size: int) -> None:
    runner = ProjectionRunner(store.engine, store.backend,
                              lambda start, stop, limit: [f for f in FACTS if start < f[0] <= stop][:limit],
                              page_size=page_size)
    assert runner.catch_up(len(FACTS)) == len(FACTS)
    with store.engine.connect() as connection:
        identities = connection.execute(sa.select(t.identities.c.amplitude_id, t.identities.c.user_id,
                                                  t.identities.c.user_properties)
                                        .order_by(t.identities.c.amplitude_id)).all()
        devices = connection.execute(sa.select(t.devices.c.device_id, t.devices.c.pointer)
                                     .order_by(t.devices.c.device_id)).all()
    assert [tuple(row) for row in identities] == [(1, None, '{"plan":"pro"}'), (2, "user-w", '{"plan":"free"}'),
                                                  (3, "user-u", "{}")]
    assert [tuple(row) for row in devices] == [("d1", 1), ("d2", 1)]
