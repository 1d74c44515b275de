"""The `ledger` command: one subcommand per everyday job.

It only translates: arguments in, the ledger's answers out as aligned tables or JSON.
Exit codes: 0 ok, 1 not found, 2 usage, input or database error, 3 the server cannot
listen on its address. Every failure is one line on stderr, never a traceback (set
LEDGER_DEBUG=1 to see one, for every failure, above that line).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import itertools
import os
import sqlite3
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from functools import partial
from typing import NoReturn

import msgspec
import sqlalchemy as sa
from eventsourcing.persistence import PersistenceError

from ledger.cli import buffered, corrections, deletions, demo, exporting, groups, render, synthetic
from ledger.cli import reading as read_commands
from ledger.cli.importing import Reading, Row, read_rows, unreadable
from ledger.cli.opening import OK, CommandError, NotFound, db_url, open_ledger, print_json, sqlite_file
from ledger.cli.progress import ProgressBar
from ledger.cli.sending import Located, Problem, Sender, Submit
from ledger.deleting import RUN_DUE_EVERY
from ledger.errors import CannotListen, LedgerError, OutsideTheLedger
from ledger.history.records import is_history_record
from ledger.store.backends import BadDatabaseURL
from ledger.store.database import DEFAULT_URL
from ledger.time_travel import AsOf, parse_as_of

NOT_FOUND, FAILED, CANNOT_LISTEN, INTERRUPTED = 1, 2, 3, 130
EXPORT_PAGE = 10_000
_json = msgspec.json.Encoder()


class Interrupted(Exception):
    """Ctrl-C during a long write: say what is already stored, exit 130."""

    def __init__(self, stored: int) -> None:
        super().__init__(f"interrupted: {stored:,} calls were stored (a request in flight may have been too); "
                         "running it again stores no call with an insert_id twice")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see '{self.prog} --help')")


# -- writing commands ----------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    url = db_url(args)
    with open_ledger(args, create=True, cache_size=demo.CACHE_SIZE) as lg:
        if lg.position:
            raise CommandError(f"{url} already holds a ledger (position {lg.position:,}); "
                               "the demo needs an empty one: pass --db sqlite:///demo.db or remove the file")
        history = synthetic.generate(args.calls, args.seed)
        path = sqlite_file(url)
        where = f"{url} ({os.path.abspath(path)})" if path else url
        print(demo.wrapped(f"Demo: {render.count(history.calls)} synthetic calls from "
                           f"{render.count(history.people)} people (seed {args.seed}) into {where}"))
        print(demo.wrapped(f"The ledger's secret is in {os.path.abspath(lg.key_file)}: keep and back up that "
                           "key file with the ledger, and never commit or share it."))
        started = time.perf_counter()
        with ProgressBar("ingesting", "calls", history.calls) as bar:
            tally = demo.ingest_history(lg, history, bar)
        seconds = time.perf_counter() - started
        print(demo.summary(tally, lg.stats(), history.calls, seconds))
        example = lg.resolve(user_id=synthetic.EXAMPLE_USER_ID)
        if example is not None:
            print(f"\n{demo.wrapped(f'Worked example: {synthetic.EXAMPLE_STORY}')}\n")
            print(read_commands.person_text(lg, example, events=10, width=demo.WIDTH))
        db = "" if url == DEFAULT_URL else f" --db {url}"
        print(f"\nExplore it:\n  ledger show{db} --user-id {synthetic.EXAMPLE_USER_ID}\n"
              f"  ledger graph{db} --user-id {synthetic.EXAMPLE_USER_ID}\n  ledger merges{db}\n  ledger stats{db}")
    return OK


def _ingest(args: argparse.Namespace) -> int:
    problem = unreadable(args.files)
    if problem:
        raise CommandError(problem)
    reading = Reading(args.files)
    rows = read_rows(args.files, sys.stdin.buffer, reading)
    first = next(rows, None)
    rows = itertools.chain([] if first is None else [first], rows)
    if first is not None and first.event is not None and is_history_record(first.event):
        return exporting.replay_rows(args, rows)
    sender = Sender(strict=args.strict)
    with open_ledger(args, create=True) as lg, ProgressBar("ingesting", "bytes" if reading.total else "lines",
                                                      reading.total) as bar:
        submit = partial(lg.ingest, min_id_length=args.min_id_length)
        try:
            lines = _feed(sender, submit, rows, args.batch_size, bar, reading)
        except KeyboardInterrupt:
            raise Interrupted(sender.tally.ingested) from None
        position = lg.position  # also when no request was sent
    tally = sender.tally
    for warning in tally.warnings:
        print(f"{warning.where}: warning: {warning.reason}", file=sys.stderr)
    if args.json:
        print_json({"lines": lines, "stopped": sender.stopped, **dataclasses.asdict(tally), "position": position})
    else:
        print(render.table([
            ("lines read", render.count(lines)),
            ("calls ingested", render.count(tally.ingested)),
            ("duplicates dropped", render.count(tally.duplicates)),
            ("requests sent", render.count(tally.requests)),
            ("requests rejected", render.count(tally.rejected_requests)),
            ("lines not stored", render.count(len(tally.problems))),
            ("warnings", render.count(len(tally.warnings))),
            ("ledger position", render.count(position)),
        ]))
    if sender.stopped:
        raise CommandError("stopped at the first problem (--strict); the lines before it were ingested")
    return FAILED if tally.problems else OK


def _feed(sender: Sender, submit: Submit, rows: Iterator[Row], batch_size: int, bar: ProgressBar,
          reading: Reading) -> int:
    """Send the rows in batches; a strict sender stops at its first problem. Returns the lines read.

    A batch's problems are printed once it is sent, in line order, whether a line was
    unreadable or its call was refused.
    """
    batch: list[Located] = []
    line_of: dict[str, int] = {}
    lines = printed = 0
    for row in rows:
        lines += 1
        if row.event is None and row.problem is None:  # a blank line: counted, nothing to send
            continue
        line_of[row.where] = lines
        if row.event is None:
            sender.problem(row.where, row.problem or "unreadable")
        else:
            batch.append((row.where, row.event))
        if len(batch) == batch_size or sender.stopped:
            sender.send(submit, batch)
            printed = _print_problems(sender.tally.problems, printed, line_of, bar)
            batch, line_of = [], {}
            bar.update(reading.done if reading.total else lines)
        if sender.stopped:
            return lines
    sender.send(submit, batch)
    _print_problems(sender.tally.problems, printed, line_of, bar)
    bar.update(reading.done if reading.total else lines)
    return lines


def _print_problems(problems: list[Problem], printed: int, line_of: dict[str, int], bar: ProgressBar) -> int:
    """Put the problems not printed yet in line order, print them; returns how many are printed now."""
    problems[printed:] = sorted(problems[printed:], key=lambda problem: line_of.get(problem.where, 0))
    for problem in problems[printed:]:
        bar.write(str(problem))
    return len(problems)


def _serve(args: argparse.Namespace) -> int:
    # Only parsed here: the server refuses a missing or unusable key before opening anything.
    api_keys = args.api_key or [key.strip() for key in os.environ.get("LEDGER_API_KEY", "").split(",") if key.strip()]
    projects = buffered.selected_projects(args) if args.projects else None
    try:
        from ledger.server import app, workers
    except ImportError as error:
        raise CommandError(f"the server cannot start: {error}") from error
    # One worker is the plain single-process server; more are started and watched by this process.
    serve = app.serve if args.workers == 1 else partial(workers.serve, workers=args.workers)
    serve(db_url=db_url(args), host=args.host, port=args.port, api_keys=api_keys,
          secret_key=args.secret_key or os.environ.get("LEDGER_SECRET_KEY", ""), cors_origins=args.cors_origin,
          projects=projects, buffer=args.buffer, deletions_every=args.run_deletions_every,
          trusted_origins=args.trusted_origin)
    return OK


def _rebuild(args: argparse.Namespace) -> int:
    with open_ledger(args) as lg, ProgressBar("rebuilding", "events") as bar:
        started = time.perf_counter()
        position = lg.rebuild(progress=lambda progress: bar.update(progress.done, progress.total))
        seconds = time.perf_counter() - started
    if args.json:
        print_json({"position": position, "seconds": round(seconds, 3)})
    else:
        rate = f" ({position / seconds:,.0f} events/s)" if seconds > 0 and position else ""
        print(f"Rebuilt the projections from position 0 to {position:,} in {seconds:.1f} s{rate}")
    return OK


# -- the parser ---------------------------------------------------------------------------


def _number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            limits = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {limits}: {value}")
        return value

    return parse


def _version() -> str:
    """The installed distribution's version (pyproject.toml), for bug reports."""
    try:
        return importlib.metadata.version("identity-ledger")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _past(text: str) -> AsOf:
    try:
        return parse_as_of(text)
    except OutsideTheLedger as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    db = _Parser(add_help=False)
    db.add_argument("--db", metavar="URL", default=argparse.SUPPRESS,
                    help=f"database URL (env LEDGER_DB; default {DEFAULT_URL}; or postgresql+psycopg://...)")
    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable JSON output")
    as_of = _Parser(add_help=False)
    as_of.add_argument("--as-of", type=_past, metavar="POSITION|TIME",
                       help="answer as the ledger stood at this position, or at this ISO-8601 time "
                            "(e.g. 2026-12-07T10:00:00Z: after the last call stored by then)")
    person = _Parser(add_help=False)
    who = person.add_mutually_exclusive_group(required=True)
    who.add_argument("--user-id", metavar="U")
    who.add_argument("--device-id", metavar="D", help="the person the device's next anonymous event goes to")
    who.add_argument("--amplitude-id", type=_number(1), metavar="A", help="a live or merged amplitude ID")
    answering = [db, as_json, as_of]

    parser = _Parser(prog="ledger", parents=[db],
                     description="An event-sourced identity ledger that resolves users the way Amplitude does.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str,
                parents: list[_Parser]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=parents, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    sub = command("demo", _demo, "generate a realistic synthetic history, ingest it, show what happened", [db])
    sub.add_argument("--calls", type=_number(1), default=synthetic.DEFAULT_CALLS, metavar="N",
                     help="calls to generate (default %(default)s)")
    sub.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED, metavar="S",
                     help="random seed (default %(default)s)")

    sub = command("ingest", _ingest, "import JSON Lines of Amplitude events, or Amplitude export zips", [db, as_json])
    sub.add_argument("files", nargs="+", metavar="FILE",
                     help="a .jsonl file, a gzipped one, an export .zip, or - for stdin")
    sub.add_argument("--strict", action="store_true", help="stop at the first bad line (lines before it stay stored)")
    sub.add_argument("--batch-size", type=_number(1, 2000), default=2000, metavar="N",
                     help="calls per request (default %(default)s)")
    sub.add_argument("--min-id-length", type=_number(0, 1024), default=5, metavar="N",
                     help="Amplitude's min_id_length option (default %(default)s)")

    sub = command("serve", _serve, "run the Amplitude-compatible HTTP server", [db])
    sub.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default %(default)s: this machine only; 0.0.0.0 for every interface)")
    sub.add_argument("--port", type=_number(1, 65535), default=8000, help="TCP port to listen on (default %(default)s)")
    sub.add_argument("--api-key", action="append", metavar="KEY",
                     help="an accepted API key (repeatable; env LEDGER_API_KEY, comma-separated)")
    sub.add_argument("--secret-key", metavar="SECRET", help="secret key for the query API (env LEDGER_SECRET_KEY)")
    sub.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                     help="a web origin whose pages may upload, e.g. https://a.example (repeatable; default any)")
    sub.add_argument("--trusted-origin", action="append", metavar="ORIGIN",
                     help="another web origin whose pages may delete or correct, e.g. https://admin.example "
                          "(repeatable; default none: only the server's own)")
    sub.add_argument("--run-deletions-every", type=_number(0), default=RUN_DUE_EVERY, metavar="SECONDS",
                     help="run due deletion jobs at start and then this often (default %(default)s; 0: leave it to cron)")
    sub.add_argument("--workers", type=_number(1, 64), default=1, metavar="N",
                     help="processes answering requests on the one address, each with its own cache "
                          "(default %(default)s; more use more cores)")
    buffered.add_project_options(sub, several=True)
    sub = command("apply", buffered.apply, "the identity writer: apply projects' buffered requests (--buffer)", [])
    buffered.add_project_options(sub, several=True)
    sub.add_argument("--no-wait", dest="wait", action="store_false", help="refuse if another writer holds a project")
    sub = command("erase-buffer", buffered.erase_buffer,
                  "erase every applied request from projects' streams now (after a deletion job; --buffer)", [])
    buffered.add_project_options(sub, several=True)

    command("rebuild", _rebuild, "replay every projection from position 0", [db, as_json])
    command("resolve", read_commands.resolve, "who a device ID, user ID or amplitude ID is", [*answering, person])
    sub = command("timeline", read_commands.timeline, "a person's merged timeline of events", [*answering, person])
    sub.add_argument("--after", type=_number(0), default=0, metavar="POSITION", help="only events after this position")
    sub.add_argument("--limit", type=_number(1), metavar="N", help="at most N events")
    command("audit", read_commands.audit, "when, where and by which call IDs were bound, linked, moved, merged",
            [*answering, person])
    sub = command("explain", read_commands.explain, "why the tracked event at a position belongs to its person",
                  answering)
    sub.add_argument("position", type=_number(1), metavar="POSITION", help="a tracked event's ledger position")
    sub = command("merges", read_commands.merges, "the merged-users table (Amplitude's export shape)", answering)
    sub.add_argument("--format", choices=["csv", "jsonl"], help="Amplitude's merged-users export as CSV or JSON Lines")
    sub = command("stats", read_commands.stats, "counts: events, users, identified users, devices, merges", answering)
    buffered.add_project_options(sub)
    sub = command("show", read_commands.show, "one person at a glance: identity, audit trail, latest events",
                  [*answering, person])
    sub.add_argument("--events", type=_number(0), default=10, metavar="N", help="latest events to show (default 10)")
    sub = command("graph", read_commands.graph_command, "a person's devices, amplitude IDs, merges and binding as a graph",
                  [*answering, person])
    sub.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    sub = command("forget", deletions.forget,
                  "forget people: every event and property of theirs (a deletion job; --now runs it)", [db, as_json])
    deletions.add_forget_options(sub)
    sub = command("deletions", deletions.deletions,
                  "the deletion jobs; --run runs those whose day has come (for cron)", [db, as_json])
    deletions.add_deletions_options(sub)
    command("rekey", deletions.rekey,
            "key the stored IDs of a ledger written before keyed IDs by a new secret (key file)", [db, as_json])
    sub = command("export", exporting.export, "the ledger's history as JSON Lines (replayable by ingest), or "
                  "Parquet tables for a warehouse (docs/export.md)", [db])
    exporting.add_export_options(sub, _number)
    sub = command("feed", exporting.feed, "publish the change feed to a NATS JetStream stream, each fact once "
                  "(docs/export.md)", [db])
    exporting.add_feed_options(sub)
    sub = command("retract", corrections.retract, "retract a bad user ID: re-resolve every call it touched, as an "
                  "audited correction (nothing stored is rewritten)", [db, as_json])
    corrections.add_retract_options(sub)
    command("corrections", corrections.corrections, "every correction: who, why, when, what it changed", answering)
    groups.add_group_options(command("group", groups.group, "a group: its properties and every member, since when",
                                     answering))
    groups.add_map_options(command("map", groups.map_user, "map a user ID onto a global user ID (counted as one "
                                   "user, audited, undone by unmap)", [db, as_json]), onto=True)
    groups.add_map_options(command("unmap", groups.unmap_user, "undo a user ID's mapping", [db, as_json]), onto=False)
    sub = command("mappings", groups.mappings, "every mapping and unmapping of user IDs: who asked, when", answering)
    sub.add_argument("--user-id", metavar="U", help="only those naming this user ID, on either side")
    return parser


# -- the entry point ---------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        code: int = args.run(args)
        return code
    except SystemExit as exit:  # --help
        return exit.code if isinstance(exit.code, int) else OK
    except NotFound as error:
        return _fail(error, NOT_FOUND)
    except BrokenPipeError:  # the reader went away (`ledger export | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except CannotListen as error:
        return _fail(error, CANNOT_LISTEN)
    except Interrupted as error:
        return _fail(error, INTERRUPTED)
    except (CommandError, LedgerError, BadDatabaseURL, OSError) as error:
        return _fail(error, FAILED)
    except (sa.exc.SQLAlchemyError, PersistenceError, sqlite3.Error) as error:
        return _fail(f"database error: {error}", FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", INTERRUPTED)
    except Exception as error:
        return _fail(f"{type(error).__name__}: {error}", FAILED)


def _fail(error: object, code: int) -> int:
    """One line on stderr; with LEDGER_DEBUG set, the traceback of the error being handled first."""
    if os.environ.get("LEDGER_DEBUG"):
        traceback.print_exc()
    lines = str(error).strip().splitlines() or [type(error).__name__]
    print(f"ledger: error: {lines[0]}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
