"""`ledger retract` and `ledger corrections`: retract a bad user ID as an audited correction, list them.

See docs/corrections.md. The ledger does the work (`IdentityLedger.retract_user_id`); this
module only turns arguments into the call and the answer into text or JSON.
"""

from __future__ import annotations

import argparse
import getpass
from contextlib import AbstractContextManager
from typing import Any, Callable, Sequence

import msgspec

from ledger.cli import render
from ledger.ledger import IdentityLedger, LedgerView

OpenLedger = Callable[[argparse.Namespace], AbstractContextManager[IdentityLedger]]
OpenReader = Callable[[argparse.Namespace], AbstractContextManager["IdentityLedger | LedgerView"]]
_json = msgspec.json.Encoder()


def add_commands(command: Callable[..., argparse.ArgumentParser], open_ledger: OpenLedger, open_reader: OpenReader,
                 db: argparse.ArgumentParser, as_json: argparse.ArgumentParser,
                 reading: Sequence[argparse.ArgumentParser]) -> None:
    """Register both commands with the `ledger` parser (`command` is its helper in `commands`)."""

    def retract(args: argparse.Namespace) -> int:
        with open_ledger(args) as lg:
            correction = lg.retract_user_id(args.user_id, reason=args.reason,
                                            requester=args.requester or _local_user())
        print(_json.encode(correction).decode() if args.json else render.correction_text(correction))
        return 0

    def corrections(args: argparse.Namespace) -> int:
        with open_reader(args) as reader:
            found = reader.corrections()
        if args.json:
            print(_json.encode(found).decode())
        else:
            print(render.corrections_table(found) if found else "(no corrections)")
        return 0

    sub = command("retract", retract, "retract a bad user ID: re-resolve every call it touched, as an audited "
                  "correction (nothing stored is rewritten)", [db, as_json])
    sub.add_argument("--user-id", required=True, metavar="U", help="the user ID to treat as never sent")
    sub.add_argument("--reason", required=True, metavar="R", help="why (kept in the audit trail)")
    sub.add_argument("--requester", metavar="X", help="who asks (default: the local user name)")
    command("corrections", corrections, "every correction: who, why, when, what it changed", list(reading))


def _local_user() -> Any:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "cli"
