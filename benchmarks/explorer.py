"""What an explorer person page costs: a person with 1,000 events on a ledger of 1M events.

    python -m benchmarks.explorer                     # 1M events (builds the ledger once, then reuses it)
    python -m benchmarks.explorer --events 100000     # a smaller ledger, for a quick look

The ledger is the seeded benchmark workload, with one signed-in person's events (on three
devices) spread evenly through it. The server runs in this process on uvicorn; each page is
fetched over HTTP with the API key and secret key, as a browser would. Figures are medians of
repeated loads after one warm-up load; the baseline is the same person's data as JSON from the
query API (identity, audit trail and the first timeline page), so the ratio is what drawing the
page adds over answering the questions it asks.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from benchmarks.workload import Event, Workload, requests
from ledger import IdentityLedger
from ledger.server.app import create_app
from tests.server_helpers import running_app

USER_ID = "explorer-bench-person"
DEVICES = [f"explorer-bench-device-{n}" for n in range(3)]
REQUEST = 1000
KEY, SECRET = "bench-api-key", "bench-secret-key"


TRACKED = 0.94  # the workload's share of calls that are tracked events (the rest: identifies, duplicates)


def stream(events: int, person_events: int) -> Iterator[list[Event]]:
    """Requests of the workload (enough calls for about `events` tracked events), with the person's spread through."""
    calls = round((events - person_events) / TRACKED)
    every = max(1, calls // person_events)

    def mixed() -> Iterator[Event]:
        for number, call in enumerate(Workload().events(calls)):
            yield call
            if number % every == 0 and number // every < person_events:
                mine = number // every
                yield {"event_type": "page_view", "device_id": DEVICES[mine * len(DEVICES) // person_events],
                       "user_id": USER_ID, "insert_id": f"explorer-bench-{mine}", "time": call["time"]}

    return requests(mixed(), REQUEST)


def build(path: Path, total: int, person_events: int) -> None:
    """Ingest the ledger unless a finished one is already there (a partial build is started again)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial_key = Path(f"{partial}.key")  # the ledger's secret sits beside its file, and moves with it
    partial.unlink(missing_ok=True)
    partial_key.unlink(missing_ok=True)
    started = time.perf_counter()
    with IdentityLedger(f"sqlite:///{partial}") as ledger:
        for request in stream(total, person_events):
            ledger.ingest(request)
        print(f"built {path}: {ledger.stats().events:,} events, position {ledger.position:,}, "
              f"in {time.perf_counter() - started:.0f} s")
    partial.rename(path)
    partial_key.rename(f"{path}.key")
    Path(f"{partial}-writers.lock").unlink(missing_ok=True)  # the closed ledger's lock file names nobody


def median_ms(client: httpx.Client, paths: list[str], loads: int, warm_up: int = 1) -> float:
    """The median wall time of fetching all of `paths`, in ms, after `warm_up` untimed loads."""
    times = []
    for load in range(warm_up + loads):
        started = time.perf_counter()
        for path in paths:
            reply = client.get(path)
            assert reply.status_code == 200, (path, reply.status_code)
        if load >= warm_up:
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the ledger (default 1M)")
    parser.add_argument("--person-events", type=int, default=1000, help="events of the measured person")
    parser.add_argument("--loads", type=int, default=15, help="timed loads per figure")
    parser.add_argument("--as-of-loads", type=int, default=15,
                        help="timed loads of a page in the past (history lookups; 0: skip it)")
    parser.add_argument("--db", type=Path, help="the ledger file (default benchmarks/results/explorer-N.db)")
    args = parser.parse_args()
    path = args.db or Path("benchmarks/results") / f"explorer-{args.events}.db"
    build(path, args.events, args.person_events)
    with IdentityLedger(f"sqlite:///{path}") as ledger:
        person = ledger.resolve(user_id=USER_ID)
        assert person is not None
        aid = person.amplitude_id
        count = ledger.event_count(aid)
        stats = ledger.stats()
        print(f"ledger: {stats.events:,} events, {stats.users:,} people, position {ledger.position:,}; "
              f"person {aid}: {count:,} events, {len(ledger.audit(amplitude_id=aid))} audit facts")
        with running_app(create_app(ledger, [KEY], SECRET)) as url, \
                httpx.Client(base_url=url, auth=(KEY, SECRET), timeout=600, follow_redirects=True) as client:
            json = median_ms(client, [f"/v1/identities/{aid}", f"/v1/audit?amplitude_id={aid}",
                                      f"/v1/identities/{aid}/timeline?limit=25"], args.loads)
            figures = {
                "person page (first timeline page)": median_ms(client, [f"/ui/people/{aid}"], args.loads),
                "person page (last timeline page)": median_ms(client, [f"/ui/people/{aid}?page={-(-count // 25)}"],
                                                               args.loads),
                "search by user ID, then the page": median_ms(client, [f"/ui/search?q={USER_ID}"], args.loads),
                "home page (figures)": median_ms(client, ["/ui/"], args.loads),
            }
            if args.as_of_loads:
                half = f"/ui/people/{aid}?as_of={ledger.position // 2}"
                figures["person page as_of half-way"] = median_ms(client, [half], args.as_of_loads)
    print(f"\nmedian of {args.loads} loads, ms (baseline: the same person as JSON from the query API, "
          f"3 requests: {json:.1f} ms)")
    for name, ms in figures.items():
        print(f"  {name:<40} {ms:9.1f} ms   {ms / json:7.2f}x the JSON baseline")


if __name__ == "__main__":
    main()
