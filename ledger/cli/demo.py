"""`ledger demo`: send the synthetic history through the same path as the server, then say what happened."""

from __future__ import annotations

import textwrap
from collections import Counter

from ledger.cli.progress import ProgressBar
from ledger.cli.render import count, table
from ledger.cli.sending import Sender, Tally
from ledger.cli.synthetic import History
from ledger.ledger import IdentityLedger
from projections.models import Stats

#: The demo's output fits a 100-column terminal.
WIDTH = 100
#: Aggregates the demo's ledger keeps cached: far fewer than the ledger's default (250,000), so
#: memory stays flat as `--calls` grows (1M calls: peak RSS 220 MB, 478 MB with the default), at
#: no cost in speed (400k calls: 201 s with 20,000, 221 s with 250,000, one machine, one load).
CACHE_SIZE = 20_000


def ingest_history(lg: IdentityLedger, history: History, bar: ProgressBar) -> Tally:
    """Every request in arrival order; refused ones are resent without their bad calls, as the SDKs do."""
    sender = Sender()
    sent = 0
    for number, request in enumerate(history.requests, start=1):
        submit = lg.identify if request.identify else lg.ingest
        sender.send(submit, [(f"request {number} call {index}", call) for index, call in enumerate(request.calls)])
        sent += len(request.calls)
        bar.update(sent)
    return sender.tally


def summary(tally: Tally, stats: Stats, calls: int, seconds: float) -> str:
    """The figures a newcomer wants: what was stored, what was dropped and why, who the users are."""
    why = Counter(problem.reason for problem in tally.problems)
    rows = [
        ("calls sent", count(calls),
         f"in {count(tally.requests)} requests, {seconds:.1f} s ({calls / seconds:,.0f} calls/s)"),
        ("calls ingested", count(tally.ingested), "tracked events and identify calls"),
        ("duplicates dropped", count(tally.duplicates), "client retries that repeated an insert_id"),
        ("requests rejected", count(tally.rejected_requests),
         f"{count(len(tally.problems))} bad calls dropped, the rest of each request resent"),
        ("events", count(stats.events), "tracked events in the ledger"),
        ("users", count(stats.users), "amplitude IDs with events (merged ones count once)"),
        ("identified users", count(stats.identified_users), "amplitude IDs with a user ID"),
        ("devices", count(stats.devices), ""),
        ("merges", count(stats.merges), "anonymous amplitude IDs merged into a user's"),
    ]
    text = table(rows, width=WIDTH)
    if why:
        reasons = table(((count(times), reason) for reason, times in sorted(why.items())), width=WIDTH)
        text += f"\n\nBad calls dropped, by reason:\n{reasons}"
    return text


def wrapped(text: str) -> str:
    """Prose within the demo's width; long words (URLs, paths) are kept whole on their own line."""
    return textwrap.fill(text, WIDTH, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
