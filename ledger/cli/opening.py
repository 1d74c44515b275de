"""Opening the ledger a command names, and what every command shares: its errors and JSON output."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import sqlalchemy as sa

from ledger.cli import buffered
from ledger.errors import LedgerNotFound
from ledger.ledger import IdentityLedger, LedgerView
from ledger.store.backends import BadDatabaseURL, backend_for
from ledger.store.database import DEFAULT_URL
from projections.models import Identity

#: The exit code of a command that did its job (the others are `commands`').
OK = 0
_json = msgspec.json.Encoder()


class CommandError(Exception):
    """Something the user can fix (bad input, wrong database): one line, exit 2."""


class NotFound(Exception):
    """The ledger has no answer for what was asked: one line, exit 1."""


def db_url(args: argparse.Namespace) -> str:
    return getattr(args, "db", None) or buffered.project_db(args) or os.environ.get("LEDGER_DB") or DEFAULT_URL


def sqlite_file(url: str) -> str | None:
    """The file an SQLite URL names, or None (a scratch database, another database, or a bad URL)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    try:
        return backend_for(parsed).location.local_file(parsed)
    except BadDatabaseURL:
        return None


@contextmanager
def open_ledger(args: argparse.Namespace, *, create: bool = False, **options: Any) -> Iterator[IdentityLedger]:
    try:
        lg = IdentityLedger(db_url(args), create=create, **options)
    except LedgerNotFound as error:
        # Reading must not create an empty ledger.db by accident in the wrong directory.
        raise CommandError(f"{error}: run 'ledger demo' or 'ledger ingest FILE' first, or pass --db URL") from None
    with lg:
        yield lg


@contextmanager
def open_reader(args: argparse.Namespace) -> Iterator[IdentityLedger | LedgerView]:
    """The live ledger, or with --as-of the ledger as it stood at that position."""
    with open_ledger(args) as lg:
        if args.as_of is None:
            yield lg
        else:
            with lg.as_of(args.as_of) as view:
                yield view


def person(reader: IdentityLedger | LedgerView, args: argparse.Namespace) -> Identity:
    if args.user_id is not None:
        found = reader.resolve(user_id=args.user_id)
    elif args.device_id is not None:
        found = reader.resolve(device_id=args.device_id)
    else:
        found = reader.identity(args.amplitude_id)
    if found is None:
        raise nothing_for(reader, args, "no identity")
    return found


def nothing_for(reader: IdentityLedger | LedgerView, args: argparse.Namespace, nothing: str) -> NotFound:
    """The person asked about has no answer: say who was asked for, and that an amplitude ID
    was forgotten when it was (the reader can tell; "no identity" would suggest a typo)."""
    if args.amplitude_id is not None and reader.is_forgotten(args.amplitude_id):
        return NotFound(f"amplitude ID {args.amplitude_id} was forgotten by a deletion job (docs/privacy.md)")
    asked = next(f"{name} {value!r}" for name, value in
                 (("user ID", args.user_id), ("device ID", args.device_id), ("amplitude ID", args.amplitude_id))
                 if value is not None)
    return NotFound(f"{nothing} for {asked}")


def print_json(value: Any) -> None:
    print(_json.encode(value).decode())
