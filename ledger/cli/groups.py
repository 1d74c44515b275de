"""`ledger group`, `ledger map`, `ledger unmap`: read a group, map a user ID onto a global one, undo it.

The ledger does the work (`IdentityLedger.group`, `map_user`, `unmap_user`, docs/rules.md); this
module only turns arguments into the call and the answer into text or JSON.
"""

from __future__ import annotations

import argparse

import msgspec

from ledger.cli.corrections import _local_user
from ledger.cli.opening import OK, NotFound, open_ledger, open_reader
from ledger.mapping import MappingReport

_json = msgspec.json.Encoder()


def add_group_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("group_type", metavar="TYPE", help="the group type, e.g. 'org id'")
    sub.add_argument("group_value", metavar="VALUE", help="the group's name")


def add_map_options(sub: argparse.ArgumentParser, *, onto: bool) -> None:
    sub.add_argument("user_id", metavar="USER_ID", help="the user ID to map" if onto else "the user ID to unmap")
    if onto:
        sub.add_argument("global_user_id", metavar="GLOBAL_USER_ID", help="the user ID it counts as from now on")
    sub.add_argument("--requester", metavar="X", help="who asks (default: the local user name)")


def group(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        found = reader.group(args.group_type, args.group_value)
    if found is None:
        raise NotFound(f"no call ever named group {args.group_value!r} of type {args.group_type!r}")
    if args.json:
        print(_json.encode(found).decode())
        return OK
    print(f"group {found.group_type}: {found.group_value}")
    print(f"  properties: {_json.encode(found.properties).decode()}")
    for member in found.members:
        print(f"  member amplitude_id {member.amplitude_id} since position {member.position}")
    return OK


def mappings(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        found = reader.mappings(args.user_id)
    if args.json:
        print(_json.encode(found).decode())
    elif not found:
        print("(no mappings)")
    for entry in [] if args.json else found:
        verb = "unmapped from" if entry.unmap else "mapped onto"
        print(f"{entry.position:>8}  {entry.user_id} {verb} {entry.global_user_id}  by {entry.requester} "
              f"at {entry.server_time}")
    return OK


def map_user(args: argparse.Namespace) -> int:
    with open_ledger(args) as lg:
        report = lg.map_user(args.user_id, args.global_user_id, requester=args.requester or _local_user())
    return _print(args, report, f"{args.user_id} is mapped onto {args.global_user_id}")


def unmap_user(args: argparse.Namespace) -> int:
    with open_ledger(args) as lg:
        report = lg.unmap_user(args.user_id, requester=args.requester or _local_user())
    return _print(args, report, f"{args.user_id} is not mapped")


def _print(args: argparse.Namespace, report: MappingReport, done: str) -> int:
    print(_json.encode(report).decode() if args.json else
          done + (" (it already was)" if report.unchanged else f" (position {report.position})"))
    return OK
