"""`python -m benchmarks.request_storage`: how much storage one request can add, within every limit.

The worst request the limits allow: its first event gives one person user properties just under
the 16 KiB cap (random, so nothing compresses them), then every other event is a small call by
that person, and each stored call keeps the person's user properties as they stood when it
arrived. The baseline is the same request without the properties, measured in the same run.
It prints, per backend, the request's size, the bytes the database grew by, and the ratios.

    python -m benchmarks.request_storage [--events 2000] [--postgres postgresql://postgres@127.0.0.1:5432/db]

SQLite: the database file after a checkpoint (WAL written back). PostgreSQL: every relation of
the ledger's schema (tables, indexes, TOAST), in a schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger import IdentityLedger
from ledger.domain.properties import MAX_PROPERTIES_BYTES

#: User property values of this many characters; as many keys as fit under the cap.
VALUE_CHARS = 1000


def worst_request(events: int, heavy: bool) -> list[dict[str, Any]]:
    """`events` calls of one person; with `heavy`, the first sets user properties just under the cap."""
    calls: list[dict[str, Any]] = [{"event_type": "view", "user_id": "user-heavy@example.org", "device_id": "device-heavy",
                                    "insert_id": f"ins-{n}-{uuid.uuid4().hex[:8]}"} for n in range(events)]
    if heavy:
        keys = (MAX_PROPERTIES_BYTES - 1024) // (VALUE_CHARS + 16)
        calls[0]["user_properties"] = {"$set": {f"p{key:02}": secrets.token_hex(VALUE_CHARS // 2) for key in range(keys)}}
    return calls


def sqlite_size(url: str) -> Callable[[], int]:
    path = url.removeprefix("sqlite:///")

    def size() -> int:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        return sum(os.path.getsize(f"{path}{suffix}") for suffix in ("", "-wal") if os.path.exists(f"{path}{suffix}"))

    return size


def postgres_size(url: str, schema: str) -> Callable[[], int]:
    def size() -> int:
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as connection:
            total = connection.execute(sa.text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind IN ('r', 'm')"),
                {"schema": schema}).scalar_one()
        engine.dispose()
        return int(total)

    return size


def added_by(url: str, size: Callable[[], int], calls: list[dict[str, Any]]) -> int:
    """Bytes the database grows by when `calls` are stored as one request (after one warm-up call)."""
    with IdentityLedger(url) as lg:
        lg.ingest([{"event_type": "warm-up", "device_id": "device-warm-up"}])
        before = size()
        lg.ingest(calls)
    return size() - before


def measure(name: str, fresh: Callable[[], tuple[str, Callable[[], int], Callable[[], None]]], events: int) -> None:
    for heavy in (False, True):
        calls = worst_request(events, heavy)
        body = len(msgspec.json.encode({"api_key": "k", "events": calls}))
        url, size, drop = fresh()
        try:
            grown = added_by(url, size, calls)
        finally:
            drop()
        label = "16 KiB user properties" if heavy else "baseline, no properties"
        print(f"{name:10} {label:24} request {body / 1024:9.1f} KiB   stored {grown / 2**20:8.2f} MiB"
              f"   x{grown / body:7.1f} the request   {grown / events / 1024:6.2f} KiB per event")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--postgres", default=os.environ.get("LEDGER_TEST_POSTGRES_URL"),
                        help="a PostgreSQL URL (default $LEDGER_TEST_POSTGRES_URL; none: SQLite only)")
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory(prefix="bench-request-storage-")
    os.environ["XDG_CONFIG_HOME"] = folder.name  # the PostgreSQL ledgers' key files go with their dropped schemas

    def fresh_sqlite() -> tuple[str, Callable[[], int], Callable[[], None]]:
        url = f"sqlite:///{folder.name}/{uuid.uuid4().hex}.db"
        return url, sqlite_size(url), lambda: None

    measure("sqlite", fresh_sqlite, args.events)
    if args.postgres:
        def fresh_postgres() -> tuple[str, Callable[[], int], Callable[[], None]]:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            separator = "&" if "?" in args.postgres else "?"

            def drop() -> None:
                engine = sa.create_engine(args.postgres.replace("postgresql://", "postgresql+psycopg://", 1))
                with engine.begin() as connection:
                    connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                engine.dispose()

            return f"{args.postgres}{separator}schema={schema}", postgres_size(args.postgres, schema), drop

        measure("postgresql", fresh_postgres, args.events)
    folder.cleanup()


if __name__ == "__main__":
    main()
