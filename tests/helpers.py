"""Small builders shared by the tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


class Clock:
    """A deterministic server clock: each reading is one millisecond after the last."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now


_insert_ids = itertools.count()


def event(device_id: str | None = None, user_id: str | None = None, event_type: str = "view", **fields: object) -> dict:
    """An Amplitude HTTP V2 event with a fresh insert_id unless one is given."""
    body: dict = {"event_type": event_type, "insert_id": f"ins-{next(_insert_ids)}", **fields}
    if device_id is not None:
        body["device_id"] = device_id
    if user_id is not None:
        body["user_id"] = user_id
    return body


def engine_for(url: str) -> sa.Engine:
    """An engine of its own on a ledger's database (in its PostgreSQL schema), to look at stored rows
    the way an operator's SQL client would, without reaching into the ledger object."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return sa.create_engine(parsed)
    schema = parsed.query.get("schema", "public")
    return sa.create_engine(parsed.difference_update_query(["schema"]).set(drivername="postgresql+psycopg"),
                            connect_args={"options": f"-csearch_path={schema}"})


@contextmanager
def connected(url: str) -> Iterator[sa.Connection]:
    """A connection from `engine_for(url)`, disposed of afterwards."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
