"""`ledger retract` and `ledger corrections`: retract a bad user ID as an audited correction, list them.

See docs/corrections.md. The ledger does the work (`IdentityLedger.retract_user_id`); this
module only turns arguments into the call and the answer into text or JSON.
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

import msgspec

from ledger.cli import render
from ledger.cli.opening import OK, open_ledger, open_reader

_json = msgspec.json.Encoder()


def add_retract_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--user-id", required=True, metavar="U", help="the user ID to treat as never sent")
    sub.add_argument("--reason", required=True, metavar="R", help="why (kept in the audit trail)")
    sub.add_argument("--requester", metavar="X", help="who asks (default: the local user name)")


def retract(args: argparse.Namespace) -> int:
    with open_ledger(args) as lg:
        correction = lg.retract_user_id(args.user_id, reason=args.reason, requester=args.requester or _local_user())
    print(_json.encode(correction).decode() if args.json else render.correction_text(correction))
    return OK


def corrections(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        found = reader.corrections()
    if args.json:
        print(_json.encode(found).decode())
    else:
        print(render.corrections_table(found) if found else "(no corrections)")
    return OK


def _local_user() -> Any:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "cli"
