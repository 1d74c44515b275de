"""`python -m benchmarks.feed_faults --trials 5`: kill -9 `ledger feed` at random moments; every fact once?

A SQLite ledger of `--people` people (each a device, a login, a second device: created, linked, bound,
pointer and merge facts) is fed to a private stream on the NATS at `--nats` (deleted afterwards). In
every trial the feeder (`--drain`) is started, killed with SIGKILL after a random number of messages,
then restarted until it finishes. The stream must then hold each change exactly once, in order:
- lost: a change missing from the stream;
- twice: a change stored more than once.
Also a hook of `benchmarks.faults` (`--kinds feeder`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import nats
import nats.js.errors

from ledger import IdentityLedger

NATS_URL = "nats://127.0.0.1:4222"
_MAIN = "import sys; from ledger.cli import main; sys.exit(main())"


async def _stream(url: str, stream: str, delete: bool = False) -> list[int]:
    """The positions of the stream's messages (and delete it), or [] when it does not exist."""
    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        try:
            info = await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            return []
        positions = [] if delete else [int((await js.get_msg(stream, sequence)).headers["Ledger-Position"])
                                       for sequence in range(info.state.first_seq, info.state.last_seq + 1)]
        if delete:
            await js.delete_stream(stream)
        return positions
    finally:
        await connection.close()


async def stored_count(url: str, stream: str) -> int:
    """How many messages `stream` holds (0 while it does not exist)."""
    connection = await nats.connect(url)
    try:
        return (await connection.jetstream().stream_info(stream)).state.messages
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await connection.close()


def make_ledger(db: str, people: int) -> list[int]:
    """The ledger's history; returns the positions of its changes."""
    with IdentityLedger(db) as lg:
        for start in range(0, people, 1000):
            numbers = range(start, min(people, start + 1000))
            lg.ingest([{"device_id": f"device-{n:07}", "event_type": "view"} for n in numbers])
            lg.ingest([{"device_id": f"device-{n:07}", "user_id": f"user-{n:07}", "event_type": "login"} for n in numbers])
            lg.ingest([{"device_id": f"phone-{n:07}", "user_id": f"user-{n:07}", "event_type": "view"} for n in numbers])
        positions, after = [], 0
        while (page := lg.changes(after, 1000)).changes:
            positions += [change.position for change in page.changes]
            after = page.next
        return positions


def run_feeder_trials(trials: int, seed: int, scratch: Path, people: int = 2000, url: str = NATS_URL) -> dict[str, Any]:
    rng = random.Random(seed)
    db = f"sqlite:///{scratch / 'feed.db'}"
    expected = make_ledger(db, people)
    stream = f"bench_feed_{uuid.uuid4().hex[:12]}"
    command = [sys.executable, "-c", _MAIN, "feed", "--db", db, "--to", url, "--subject", f"{stream}.changes",
               "--stream", stream, "--drain"]
    environment = {**os.environ, "PYTHONPATH": os.getcwd()}
    kills = 0
    started = time.perf_counter()
    try:
        for _ in range(trials):
            target = asyncio.run(stored_count(url, stream)) + rng.randint(1, max(1, len(expected) // (trials + 1)))
            feeder = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while feeder.poll() is None and asyncio.run(stored_count(url, stream)) < target:
                time.sleep(0.02)
            if feeder.poll() is None:
                feeder.send_signal(signal.SIGKILL)
                kills += 1
            feeder.wait(60)
        subprocess.run(command, env=environment, check=True, capture_output=True, timeout=600)
        seconds = time.perf_counter() - started
        found = asyncio.run(_stream(url, stream))
    finally:
        asyncio.run(_stream(url, stream, delete=True))
    seen = Counter(found)
    return {"kind": "feeder", "trials": trials, "kills": kills, "changes": len(expected),
            "lost": len(set(expected) - set(seen)), "twice": sum(1 for count in seen.values() if count > 1),
            "in_order": found == sorted(found), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.feed_faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--nats", default=NATS_URL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-feed-faults-") as scratch:
        result = run_feeder_trials(args.trials, args.seed, Path(scratch), args.people, args.nats)
    print(result)
    print("\n| killed (SIGKILL, restarted) | trials | kills | changes | lost | published twice | in order |\n"
          "|---|---|---|---|---|---|---|")
    print(f"| ledger feed | {result['trials']} | {result['kills']} | {result['changes']:,} | {result['lost']} | "
          f"{result['twice']} | {result['in_order']} |")


if __name__ == "__main__":
    main()
