"""`ledger forget`, `ledger deletions` and `ledger rekey`: deletion jobs (and the secret) from the command line.

`forget` files a deletion request (or, with --now, runs it at once); `deletions` lists the
jobs, with --run (for cron) runs the ones whose day has come, and with --withdraw takes an
amplitude ID out of a job that has not run; `rekey` gives a ledger
written before keyed IDs its secret (docs/privacy.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import msgspec

from ledger.cli.opening import OK, open_ledger
from ledger.errors import DeletionRefused

#: `ledger deletions` lists this many days back, and forward, by default.
DAYS_BACK, DAYS_AHEAD = 90, 7
_json = msgspec.json.Encoder()


def add_forget_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--user-id", action="append", default=[], metavar="U", help="a user ID (repeatable)")
    sub.add_argument("--amplitude-id", action="append", default=[], type=_amplitude_id, metavar="A",
                     help="an amplitude ID, live or merged (repeatable)")
    sub.add_argument("--requester", required=True, metavar="R", help="who asks, for the audit trail")
    sub.add_argument("--now", action="store_true", help="run the job at once instead of on the next day")
    sub.add_argument("--ignore-invalid-id", action="store_true", help="skip unknown IDs instead of refusing")


def add_deletions_options(sub: argparse.ArgumentParser) -> None:
    action = sub.add_mutually_exclusive_group()
    action.add_argument("--run", dest="run_due", action="store_true", help="run every job whose day has come (for cron)")
    action.add_argument("--withdraw", type=_amplitude_id, metavar="A",
                        help="take amplitude ID A out of the job of --day, which has not run yet")
    sub.add_argument("--day", type=_day, metavar="YYYY-MM-DD", help="the job to withdraw from")
    sub.add_argument("--start-day", type=_day, metavar="YYYY-MM-DD", help=f"default: {DAYS_BACK} days ago")
    sub.add_argument("--end-day", type=_day, metavar="YYYY-MM-DD", help=f"default: in {DAYS_AHEAD} days")


def forget(args: argparse.Namespace) -> int:
    with open_ledger(args) as lg:
        try:
            job = lg.forget(user_ids=args.user_id, amplitude_ids=args.amplitude_id, requester=args.requester,
                            ignore_invalid_id=args.ignore_invalid_id, now=args.now)
        except DeletionRefused as refused:
            if "invalid_user_ids" not in refused.body:
                raise
            # The HTTP API's reply names its field; the command names its flag.
            raise DeletionRefused.because("Unknown IDs (pass --ignore-invalid-id to skip them)",
                                          invalid_amplitude_ids=refused.body["invalid_amplitude_ids"],
                                          invalid_user_ids=refused.body["invalid_user_ids"]) from None
    if args.json:
        print(_json.encode(job).decode())
    else:
        _print_job(job)
    return OK


def deletions(args: argparse.Namespace) -> int:
    if (args.withdraw is None) != (args.day is None):
        raise DeletionRefused.because("--withdraw and --day go together")
    with open_ledger(args) as lg:
        if args.withdraw is not None:
            job = lg.withdraw_deletion(args.withdraw, args.day)
            if args.json:
                print(_json.encode(job).decode())
            else:
                print(f"Withdrew amplitude ID {args.withdraw} from the job of {args.day}.")
                _print_job(job)
            return OK
        if args.run_due:
            runs = lg.run_deletions()
            if args.json:
                print(_json.encode([run.__dict__ for run in runs]).decode())
            for run in [] if args.json else runs:
                on_disk = "erased on disk" if run.reclaimed else "erased; the disk still holds it until readers let go"
                print(f"{run.day}  ran: forgot amplitude IDs {', '.join(map(str, run.amplitude_ids))} ({on_disk})")
            if not runs and not args.json:
                print("No deletion job was due.")
            return OK
        today = dt.datetime.now(dt.UTC).date()
        jobs = lg.deletions(args.start_day or today - dt.timedelta(days=DAYS_BACK),
                            args.end_day or today + dt.timedelta(days=DAYS_AHEAD))
    if args.json:
        print(_json.encode(jobs).decode())
    for job in [] if args.json else jobs:
        _print_job(job)
    if not jobs and not args.json:
        print("No deletion jobs in these days.")
    return OK


def rekey(args: argparse.Namespace) -> int:
    with open_ledger(args) as lg:
        moved = lg.rekey()
    if args.json:
        print(_json.encode({"streams": moved}).decode())
    else:
        print(f"Rekeyed {moved:,} device and user streams; keep and back up the key file with the ledger.")
    return OK


def _print_job(job: dict[str, Any]) -> None:
    print(f"{job['day']}  {job['status']}")
    for entry in job["amplitude_ids"]:
        print(f"  amplitude ID {entry['amplitude_id']}  requested by {entry['requester']} "
              f"on {entry['requested_on_day']}")


def _amplitude_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 2**63):
        raise argparse.ArgumentTypeError(f"not an amplitude ID: {text!r}")
    return int(text)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else dt.date.fromisoformat("bad")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None
