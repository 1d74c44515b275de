"""The reading commands: who someone is, their timeline, audit trail, merges, counts, a person at a glance,
and a graph; each answers live or, with --as-of, as the ledger stood then."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

import msgspec

from ledger.cli import amplitude_export, buffered, graph, render
from ledger.cli.opening import OK, CommandError, NotFound, nothing_for, open_reader, person, print_json
from ledger.ledger import IdentityLedger, LedgerView
from projections.graph import person_graph
from projections.models import Identity


def resolve(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        identity = person(reader, args)
    if args.json:
        print_json(identity)
    else:
        print(render.identity_table(identity))
    return OK


def timeline(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        events = reader.timeline(person(reader, args).amplitude_id, after=args.after, limit=args.limit)
    if args.json:
        print_json(events)
    else:
        print(render.timeline_table(events) or "(no events)")
    return OK


def audit(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        entries = reader.audit(user_id=args.user_id, device_id=args.device_id, amplitude_id=args.amplitude_id)
        if not entries:
            raise nothing_for(reader, args, "no audit trail")
    if args.json:
        print_json(entries)
    else:
        print(render.audit_table(entries))
    return OK


def explain(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        explanation = reader.explain(args.position)
    if explanation is None:
        raise NotFound(f"no tracked event at position {args.position}")
    if args.json:
        print_json(explanation)
    else:
        now = "forgotten" if explanation.now is None else f"amplitude ID {explanation.now}"
        print(f"the event at position {explanation.position} arrived as amplitude ID {explanation.arrived_as}; "
              f"it counts for {now}, because:")
        print(render.audit_table(explanation.because))
    return OK


def merges(args: argparse.Namespace) -> int:
    if args.json and args.format:
        raise CommandError("choose one of --json and --format")
    with open_reader(args) as reader:
        merges = reader.merges()
    if args.json:
        print_json(merges)
    elif args.format == "jsonl":
        for merge in merges:
            print_json(amplitude_export.merge_row(merge))
    elif args.format == "csv":
        undone = any(merge.undone_server_time is not None for merge in merges)
        writer = csv.DictWriter(sys.stdout, lineterminator="\n", fieldnames=amplitude_export.MERGE_COLUMNS
                                + ([amplitude_export.UNDONE_COLUMN] if undone else []))
        writer.writeheader()
        writer.writerows(amplitude_export.merge_row(merge) for merge in merges)
    else:
        print(render.merges_table(merges) if merges else "(no merges)")
    return OK


def stats(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        lag = buffered.lag(args, reader)  # first: the counts then hold at least what it calls applied
        stats = {**msgspec.structs.asdict(reader.stats()), "position": reader.position, **lag}
    if args.json:
        print_json(stats)
    else:
        print(render.table((name.replace("_", " "), render.count(value)) for name, value in stats.items()))
    return OK


def person_text(reader: IdentityLedger | LedgerView, identity: Identity, events: int,
                 width: int | None = None) -> str:
    audit, latest, total = person_facts(reader, identity, events)
    return render.person(identity, audit, latest, total, width)


def person_facts(reader: IdentityLedger | LedgerView, identity: Identity,
                  events: int) -> tuple[list[Any], list[Any], int]:
    """The person's audit trail, their latest `events` tracked events (oldest first), and how many they have."""
    latest = reader.timeline(identity.amplitude_id, limit=events, newest_first=True)[::-1] if events else []
    return reader.audit(amplitude_id=identity.amplitude_id), latest, reader.event_count(identity.amplitude_id)


def show(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        identity = person(reader, args)
        if not args.json:
            print(person_text(reader, identity, args.events))
            return OK
        audit, latest, total = person_facts(reader, identity, args.events)
    print_json({"identity": identity, "audit": audit, "events": total, "latest_events": latest})
    return OK


def graph_command(args: argparse.Namespace) -> int:
    with open_reader(args) as reader:
        identity = person(reader, args)
        drawn = person_graph(identity, reader.audit(amplitude_id=identity.amplitude_id))
    if args.json:
        print_json(drawn)
    else:
        print(graph.mermaid(drawn) if args.format == "mermaid" else graph.dot(drawn))
    return OK
