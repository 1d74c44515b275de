"""`python -m benchmarks.faults --trials 20`: kill -9 parts of a buffered deployment at random moments.

One project on SQLite, two `ledger serve --buffer` processes, one `ledger apply` writer and a
private nats-server (own port and store, so the shared one is never touched), all on
loopback. Client threads send requests of REQUEST_EVENTS events, each event marked with its
request and index and carrying no insert_id (so the ledger's own deduplication cannot hide
a request applied twice); like an SDK they retry a failed request, the same body, on the
other server until it is answered 200. In every trial, at a random moment, one target is
killed with SIGKILL and started again: a serve process, the writer, or the NATS server.
When the writer has caught up, every event in the ledger is counted per request:
- lost: a request answered 200 with an event missing;
- twice: an event stored more than once;
- partly: a request with some events stored and some not.

The `correction` kind kills nothing: it is the second-writer trial (`benchmarks.second_writer`),
a component of `--component` calls retracted by `ledger retract` from a second process while
a direct `ledger serve` ingests steadily; it must finish every time, with nothing lost.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.buffered_processes import API_KEY, Deployment
from benchmarks.feed_faults import run_feeder_trials
from benchmarks.second_writer import run_corrections

REQUEST_EVENTS = 5
SENDERS = 4
DEVICES = 300
KINDS = ("serve", "writer", "nats", "correction", "feeder")


class Senders:
    """Client threads sending marked requests, retrying each until some server answers 200."""

    def __init__(self, ports: list[int], seed: int, pause_s: float = 0.0) -> None:
        self.ports = ports
        self.pause_s = pause_s
        self.acked: set[int] = set()
        self.retries = 0
        self.timings: list[tuple[float, float]] = []  # (first attempt, seconds to its 200), monotonic
        self.replies: Counter[str] = Counter()  # every answer other than a 200, by status and Retry-After
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._random = random.Random(seed)
        self._threads = [threading.Thread(target=self._send, args=(n,)) for n in range(SENDERS)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _body(self, request: int) -> bytes:
        with self._lock:
            devices = [self._random.randrange(DEVICES) for _ in range(REQUEST_EVENTS)]
        events = [{"event_type": "trial", "device_id": f"device-{device:04d}",
                   "event_properties": {"request": request, "index": index}}
                  for index, device in enumerate(devices)]
        return json.dumps({"api_key": API_KEY, "events": events}).encode()

    def _send(self, sender: int) -> None:
        connections: dict[int, http.client.HTTPConnection] = {}
        while not self._stop.is_set():
            request = next(self._ids)
            body = self._body(request)
            begun = time.monotonic()
            for attempt in itertools.count():
                port = self.ports[(sender + attempt) % len(self.ports)]
                if self._post(connections, port, body):
                    with self._lock:
                        self.acked.add(request)
                        self.timings.append((begun, time.monotonic() - begun))
                    self._stop.wait(self.pause_s)
                    break
                with self._lock:
                    self.retries += 1
                time.sleep(0.05)

    def _post(self, connections: dict[int, http.client.HTTPConnection], port: int, body: bytes) -> bool:
        try:
            connection = connections.setdefault(port, http.client.HTTPConnection("127.0.0.1", port, timeout=15))
            connection.request("POST", "/2/httpapi", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()  # always: an unread body breaks the next request on this connection
            ok = response.status == 200 and json.loads(answer).get("code") == 200
            if not ok:
                self._saw(f"{response.status} Retry-After: {response.getheader('Retry-After')}")
            return ok
        except (OSError, http.client.HTTPException, ValueError) as error:
            connections.pop(port).close()
            self._saw(type(error).__name__)
            return False

    def _saw(self, reply: str) -> None:
        with self._lock:
            self.replies[reply] += 1


def fault(deployment: Deployment, kind: str, ports: list[int], rng: random.Random) -> Callable[[], None]:
    """Kill one target with SIGKILL; returns how to start it again."""
    if kind == "serve":
        port = rng.choice(ports)
        deployment.kill_server(port)
        return lambda: deployment.start_server(port)
    if kind == "writer":
        deployment.kill_writer()
        return deployment.start_writer
    deployment.kill_nats()
    return deployment.start_nats


def _wait_applying(deployment: Deployment, port: int) -> None:
    """Until the restarted writer has applied something, so the next kill hits it at work."""
    before = deployment.stats(port)["applied_sequence"]
    deadline = time.monotonic() + 20
    while deployment.stats(port)["applied_sequence"] == before and time.monotonic() < deadline:
        time.sleep(0.02)


def count_events(db: str) -> Counter[tuple[int, int]]:
    """How many times each (request, index) event is in the ledger (events without the marks are not counted)."""
    from ledger import IdentityLedger

    seen: Counter[tuple[int, int]] = Counter()
    with IdentityLedger(db) as ledger:
        after = 0
        while page := ledger.events(after=after, limit=10_000):
            for event in page:
                if "request" in event.event_properties:
                    seen[(event.event_properties["request"], event.event_properties["index"])] += 1
            after = page[-1].position
    return seen


def verdict(seen: Counter[tuple[int, int]], acked: set[int]) -> dict[str, int]:
    stored = {request for request, _ in seen}
    partly = [request for request in stored
              if sum(1 for index in range(REQUEST_EVENTS) if seen[(request, index)]) != REQUEST_EVENTS]
    lost = [request for request in acked if any(seen[(request, index)] == 0 for index in range(REQUEST_EVENTS))]
    return {"requests_acknowledged": len(acked), "requests_stored": len(stored),
            "lost": len(lost), "applied_twice": sum(1 for count in seen.values() if count > 1), "partly": len(partly)}


def run_kind(kind: str, trials: int, seed: int, scratch: Path) -> dict[str, Any]:
    workdir = scratch / kind
    workdir.mkdir()
    rng = random.Random(seed)
    deployment = Deployment(workdir)
    try:
        deployment.start_nats()
        ports = [deployment.start_server(), deployment.start_server()]
        deployment.start_writer()
        senders = Senders(ports, seed)
        started = time.perf_counter()
        for _ in range(trials):
            time.sleep(rng.uniform(0.1, 1.5))
            restart = fault(deployment, kind, ports, rng)
            time.sleep(rng.uniform(0.0, 0.5))
            restart()
            if kind == "writer":
                _wait_applying(deployment, ports[0])
        senders.stop()
        seconds = time.perf_counter() - started
        deployment.wait_applied(ports[0])
        result = verdict(count_events(deployment.db), senders.acked)
        return {"kind": kind, "trials": trials, "seconds": round(seconds, 1), "client_retries": senders.retries,
                **result}
    finally:
        deployment.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="faults per kind (default %(default)s)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="which targets (default %(default)s)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--component", type=int, default=20_000, help="calls of each component retracted in "
                        "the correction trial (default %(default)s)")
    parser.add_argument("--correction-trials", type=int, default=5, help="retractions under load (default "
                        "%(default)s)")
    parser.add_argument("--correction-db", metavar="URL", help="the correction trial's database (default: SQLite "
                        "in a scratch directory)")
    parser.add_argument("--cluster", action="store_true", help="lose a node of a three-node cluster instead "
                        "(benchmarks.faults_cluster: leader, follower, restart, leader+writer; --kinds narrows)")
    args = parser.parse_args()
    if args.cluster:
        return cluster_main(args)
    results = []
    corrections = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as scratch:
        for kind in args.kinds.split(","):
            if kind == "feeder":  # benchmarks.feed_faults: kill -9 of `ledger feed`
                print(run_feeder_trials(args.trials, args.seed, Path(scratch)), flush=True)
                continue
            if kind == "correction":
                corrections.append(run_corrections(args.correction_trials, args.component, Path(scratch),
                                                   args.correction_db))
                print(corrections[-1], flush=True)
                continue
            results.append(run_kind(kind, args.trials, args.seed, Path(scratch)))
            print(results[-1], flush=True)
    print(f"\n(python -m benchmarks.faults --trials {args.trials} --seed {args.seed} --component {args.component} "
          f"--correction-trials {args.correction_trials})\n")
    if results:
        print("| killed (SIGKILL, restarted) | trials | requests answered 200 | stored | lost | applied twice | partly "
              "| client retries |\n|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['kind']} | {r['trials']} | {r['requests_acknowledged']:,} | {r['requests_stored']:,} | "
              f"{r['lost']} | {r['applied_twice']} | {r['partly']} | {r['client_retries']:,} |")
    if corrections:
        print("\n| second writer: `ledger retract` of | trials | median s under load | s idle | ratio | requests "
              "answered 200 | lost | applied twice | partly |\n|---|---|---|---|---|---|---|---|---|")
    for r in corrections:
        print(f"| {r['component_calls']:,} calls | {r['trials']} | {r['seconds_median_under_load']} | "
              f"{r['seconds_idle']} | {r['ratio']} | {r['requests_acknowledged']:,} | {r['lost']} | "
              f"{r['applied_twice']} | {r['partly']} |")


def cluster_main(args: argparse.Namespace) -> None:
    from benchmarks.faults_cluster import CLUSTER_KINDS, print_cluster_table, run_cluster_kind  # it imports this module

    kinds = CLUSTER_KINDS if args.kinds == ",".join(KINDS) else args.kinds.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-cluster-") as scratch:
        for kind in kinds:
            results.append(run_cluster_kind(kind, args.trials, args.seed, Path(scratch)))
            print(results[-1], flush=True)
    print(f"\n(python -m benchmarks.faults --cluster --trials {args.trials} --seed {args.seed})\n")
    print_cluster_table(results)


if __name__ == "__main__":
    main()
