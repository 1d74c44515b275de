"""Crash safety under kill -9: no acknowledged request may be lost, no request may be stored in part.

Each trial starts `ledger serve` on one database, sends requests of several tracked events
(unique insert_ids) from a few client threads, kills the server with SIGKILL at a random
moment, then opens the ledger again and checks every request: one answered 200 must be
there whole; one that was in flight may be there whole or not at all, never in part.
The database carries over from trial to trial, so each restart also recovers the last crash.

    python -m benchmarks.kill9 --trials 20                      # SQLite in a scratch directory
    python -m benchmarks.kill9 --trials 20 --db postgresql://postgres@127.0.0.1:5432/test?schema=kill9
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import httpx
import msgspec

from ledger import IdentityLedger

API_KEY = "kill9-api-key"
SECRET_KEY = "kill9-secret-key-long-enough"
EVENTS_PER_REQUEST = 5
CLIENTS = 3


@dataclass
class Outcome:
    """What the clients were told, and what the ledger holds after the crashes."""

    sent: dict[str, int] = field(default_factory=dict)  # request id -> events in it
    acknowledged: set[str] = field(default_factory=set)
    lost: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from ledger.cli import main; raise SystemExit(main())", "serve",
               "--db", url, "--port", str(port), "--api-key", API_KEY, "--secret-key", SECRET_KEY]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
        if server.poll() is not None:
            raise RuntimeError(f"ledger serve exited with {server.returncode}")
    server.kill()
    raise RuntimeError("ledger serve did not answer /healthz within 60 s")


def _client(base_url: str, trial: int, client: int, outcome: Outcome, stop: threading.Event,
            rng: random.Random) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for number in range(1_000_000):
            if stop.is_set():
                return
            request_id = f"t{trial}c{client}r{number}"
            events = [{"event_type": "kill9", "device_id": f"device-{rng.randrange(50)}",
                       "insert_id": f"{request_id}e{index}"} for index in range(EVENTS_PER_REQUEST)]
            if rng.random() < 0.3:
                events[0]["user_id"] = f"user-{rng.randrange(20)}"
            outcome.sent[request_id] = len(events)
            try:
                reply = http.post("/2/httpapi", content=msgspec.json.encode({"api_key": API_KEY, "events": events}),
                                  headers={"Content-Type": "application/json"})
            except httpx.TransportError:
                return  # the server is gone
            if reply.status_code == 200 and reply.json().get("code") == 200:
                outcome.acknowledged.add(request_id)


def trial(url: str, number: int, outcome: Outcome, rng: random.Random) -> None:
    """One server life: start, send from several clients, SIGKILL at a random moment."""
    port = _free_port()
    server = _start_server(url, port)
    stop = threading.Event()
    clients = [threading.Thread(target=_client, args=(f"http://127.0.0.1:{port}", number, index, outcome, stop,
                                                      random.Random(rng.random())))
               for index in range(CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(rng.uniform(0.2, 1.5))
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()
    stop.set()
    for client in clients:
        client.join()


def check(url: str, outcome: Outcome) -> None:
    """Open the ledger after the crashes and compare it with what the clients were told."""
    found: dict[str, int] = {}
    with IdentityLedger(url) as lg:
        after = 0
        while page := lg.events(after=after, limit=10_000):
            for event in page:
                if event.insert_id is not None:
                    request_id = event.insert_id.rpartition("e")[0]
                    found[request_id] = found.get(request_id, 0) + 1
            after = page[-1].position
    for request_id, size in outcome.sent.items():
        stored = found.get(request_id, 0)
        if request_id in outcome.acknowledged and stored != size:
            outcome.lost.append(request_id)
        elif stored not in (0, size):
            outcome.partial.append(request_id)


def run(url: str, trials: int, seed: int | None = None) -> Outcome:
    rng = random.Random(seed)
    outcome = Outcome()
    for number in range(trials):
        trial(url, number, outcome, rng)
    check(url, outcome)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kill9", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--db", help="database URL (default: SQLite in a scratch directory)")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kill9-") as scratch:
        url = args.db or f"sqlite:///{scratch}/ledger.db"
        outcome = run(url, args.trials, args.seed)
    print(f"{args.trials} kill -9 trials, {len(outcome.sent)} requests sent, {len(outcome.acknowledged)} acknowledged:"
          f" {len(outcome.lost)} acknowledged and lost, {len(outcome.partial)} stored in part")
    return 1 if outcome.lost or outcome.partial else 0


if __name__ == "__main__":
    raise SystemExit(main())
