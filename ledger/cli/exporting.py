"""`ledger export` (the history as JSON Lines, or Parquet for a warehouse) and `ledger ingest` of a history file.

Incremental loads: `--since POSITION` writes what came after it, `--as-of POSITION` stops there; with
`--state FILE` the start is read from the file and the position reached is written back only once
the output is complete and flushed (a new file renamed over the old: a crash never advances it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import msgspec

from ledger.cli import render
from ledger.cli.importing import Row
from ledger.cli.opening import OK, CommandError, open_ledger, print_json
from ledger.history.parquet import write_parquet
from ledger.history.records import HistoryFormatError, checked

_json = msgspec.json.Encoder()


def add_export_options(sub: argparse.ArgumentParser, number: Any) -> None:
    sub.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl",
                     help="jsonl: the lossless history (default); parquet: tables for a warehouse (needs --out DIR)")
    sub.add_argument("--out", metavar="PATH", help="write to this file (jsonl; default stdout) or directory (parquet)")
    start = sub.add_mutually_exclusive_group()
    start.add_argument("--since", type=number(0), default=0, metavar="POSITION",
                       help="only what came after this position")
    start.add_argument("--state", metavar="FILE",
                       help="read the start position from FILE (0 if absent); write the position reached after")
    sub.add_argument("--as-of", type=number(0), metavar="POSITION", help="stop at this position")


def add_feed_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--to", required=True, metavar="URL", help="the NATS server, nats://HOST:PORT")
    sub.add_argument("--subject", required=True, metavar="S", help="the subject each change is published on")
    sub.add_argument("--stream", metavar="NAME", help="the JetStream stream (created if absent; default "
                     "LEDGER_FEED_<subject>)")
    sub.add_argument("--project", default="default", metavar="NAME",
                     help="names the ledger in each Nats-Msg-Id (default %(default)s)")
    sub.add_argument("--drain", action="store_true", help="stop once every change is published (default: follow)")


def feed(args: argparse.Namespace) -> int:
    from ledger.history.feeding import FeedTarget
    from ledger.history.feeding import feed as publish
    target = FeedTarget.of(args.to, args.subject, args.stream, args.project)
    with open_ledger(args) as lg:
        sent = publish(lg, target, drain=args.drain)
    print_json({"published": sent, "stream": target.stream, "subject": target.subject})
    return OK


def read_state(path: str) -> int:
    """The position a state file holds; 0 for none yet."""
    try:
        text = Path(path).read_text().strip()
    except FileNotFoundError:
        return 0
    if not text.isdigit():
        raise CommandError(f"state file {path} does not hold a position: {text[:40]!r}")
    return int(text)


def write_state(path: str, position: int) -> None:
    """Replace the state file in one step: a new file, flushed, renamed over the old one."""
    target = Path(path)
    scratch = target.with_name(target.name + ".new")
    with open(scratch, "w") as stream:
        stream.write(f"{position}\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(scratch, target)


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    """stdout, or the file at `path` written whole under a scratch name and renamed when complete."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    scratch = target.with_name(target.name + ".partial")
    with open(scratch, "w") as stream:
        yield stream
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(scratch, target)


def export(args: argparse.Namespace) -> int:
    since = read_state(args.state) if args.state else args.since
    with open_ledger(args) as lg:
        stop = lg.position if args.as_of is None else min(args.as_of, lg.position)
        if since > stop:
            raise CommandError(f"the start position {since} is past the ledger's position {stop}")
        if args.format == "parquet":
            if args.out is None:
                raise CommandError("--format parquet writes a directory of files: pass --out DIR")
            write_parquet(lg, Path(args.out), after=since, stop=stop)
        else:
            with _output(args.out) as stream:
                for record in lg.export(after=since, as_of=stop):
                    stream.write(_json.encode(record).decode() + "\n")
    if args.state:
        write_state(args.state, stop)
    return OK


def replay_rows(args: argparse.Namespace, rows: Iterator[Row]) -> int:
    """`ledger ingest` of a history file: replayed in order, stopping at the first bad line."""

    def records() -> Iterator[dict[str, Any]]:
        for row in rows:
            if row.event is None:
                raise CommandError(f"{row.where}: {row.problem}: a history is replayed whole, in order")
            try:
                yield checked(row.event)
            except HistoryFormatError as error:
                raise CommandError(f"{row.where}: {error}") from None

    with open_ledger(args, create=True) as lg:
        summary = dataclasses.asdict(lg.replay(records()))
    if args.json:
        print_json(summary)
    else:
        print(render.table((name.replace("_", " "), render.count(value)) for name, value in summary.items()))
    return OK
