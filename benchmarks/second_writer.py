"""The second-writer trial of `python -m benchmarks.faults --kinds correction`: an operator action from
a second process while a server ingests.

One `ledger serve` (direct, no buffer) on the trial's database takes marked requests from
`faults.Senders` (paced: a steady, not a flooding, load). Before it starts, the database gets
`trials + 1` components of `--component` calls each: `COMPONENT_DEVICES` devices per thousand
calls, each identified once with the component's own bad user ID, then tracked. One component
is retracted with the server idle (the baseline), then one per trial by `ledger retract` run as
a separate process while the senders keep sending. A correction plans and stores in the
writer's turn (docs/corrections.md), so it must finish every time, and when the senders stop,
every request the server answered 200 must be in the ledger once (`faults.verdict`).
Printed: the retraction's median seconds under load, the idle one, and their ratio.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.buffered_processes import LEDGER, Deployment

#: Devices per thousand calls of a component (each device: one identify, then tracked calls).
COMPONENT_DEVICES = 100
#: Pause of each sender between requests: 4 senders make a steady load of some tens of requests a second.
SENDER_PAUSE_S = 0.1
REQUEST_CALLS = 2000


def bad_user_id(number: int) -> str:
    return f"glued-{number}"


def build_components(db: str, count: int, calls: int) -> None:
    """`count` components of `calls` calls, each glued together by its own bad user ID."""
    from ledger import IdentityLedger

    devices = max(1, calls * COMPONENT_DEVICES // 1000)
    with IdentityLedger(db) as ledger:
        for number in range(count):
            component = []
            for device in range(devices):
                device_id = f"component-{number}-device-{device}"
                component.append({"event_type": "sign in", "device_id": device_id, "user_id": bad_user_id(number)})
                component.extend({"event_type": "step", "device_id": device_id}
                                 for _ in range(calls // devices - 1))
            for start in range(0, len(component), REQUEST_CALLS):
                ledger.ingest(component[start:start + REQUEST_CALLS])


def retract(db: str, number: int) -> float:
    """`ledger retract` in a process of its own; returns its seconds (raises, saying why, if it failed)."""
    started = time.perf_counter()
    done = subprocess.run([*LEDGER, "retract", "--db", db, "--user-id", bad_user_id(number), "--reason", "trial",
                           "--requester", "benchmarks.second_writer", "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ledger retract exited {done.returncode}: {done.stderr.strip()}")
    return time.perf_counter() - started


def run_corrections(trials: int, calls: int, scratch: Path, db_url: str | None = None) -> dict[str, Any]:
    from benchmarks.faults import Senders, count_events, verdict  # here: faults runs this trial

    workdir = scratch / "correction"
    workdir.mkdir()
    deployment = Deployment(workdir, db_url=db_url)
    build_components(deployment.db, trials + 1, calls)
    try:
        port = deployment.start_server(buffered=False)
        idle = retract(deployment.db, trials)
        senders = Senders([port], seed=trials, pause_s=SENDER_PAUSE_S)
        loaded = []
        try:
            for number in range(trials):
                time.sleep(0.5)  # the senders are under way
                loaded.append(retract(deployment.db, number))
        finally:
            senders.stop()
        result = verdict(count_events(deployment.db), senders.acked)
    finally:
        deployment.stop()
    median = statistics.median(loaded)
    return {"kind": "correction", "trials": trials, "component_calls": calls, "seconds_idle": round(idle, 2),
            "seconds_median_under_load": round(median, 2), "ratio": round(median / idle, 2),
            "client_retries": senders.retries, **result}
