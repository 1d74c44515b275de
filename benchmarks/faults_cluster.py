"""`python -m benchmarks.faults --cluster --trials 20`: lose a node of a three-node JetStream cluster under load.

The deployment of benchmarks.faults (two `ledger serve --buffer`, one `ledger apply`, four
retrying clients, one project on SQLite), its stream replicated three times on a cluster of
benchmarks.nats_cluster. Kinds of trial, each `--trials` times, at a random moment:
- leader: kill -9 the stream's leader, start it again after 1-3 s;
- follower: kill -9 a node that is not the leader, start it again;
- restart: stop a node (SIGTERM), start it again, and wait until it has caught up;
- leader+writer: kill -9 the leader and the writer at once, start both again.
Counted as in benchmarks.faults (lost, applied twice, partly), plus what clients saw: how long
a request took from its first attempt to its 200 when it began within 10 s after a kill (p50,
p99, and the worst per trial: the stall), and every reply that was not a 200.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from benchmarks.buffered_processes import Deployment
from benchmarks.faults import Senders, count_events, verdict
from benchmarks.measure import percentile
from benchmarks.nats_cluster import NatsCluster

CLUSTER_KINDS = ("leader", "follower", "restart", "leader+writer")
#: A request whose first attempt began this long after a kill counts as met by the fault.
AFTER_KILL_S = 10.0


def run_cluster_kind(kind: str, trials: int, seed: int, scratch: Path) -> dict[str, Any]:
    workdir = scratch / kind.replace("+", "-")
    workdir.mkdir()
    rng = random.Random(seed)
    cluster = NatsCluster(workdir).start()
    deployment = Deployment(workdir, nats_urls=cluster.urls, replicas=3)
    kills: list[float] = []
    catch_up: list[float] = []
    try:
        ports = [deployment.start_server(), deployment.start_server()]
        deployment.start_writer()
        stream = deployment.buffer.split("prefix=")[1].split("&")[0] + "_bench"
        senders = Senders(ports, seed)
        started = time.perf_counter()
        for _ in range(trials):
            time.sleep(rng.uniform(0.5, 2.0))
            leader = cluster.stream_leader(stream)
            victim = leader if kind != "follower" else rng.choice([n for n in cluster.names if n != leader])
            kills.append(time.monotonic())
            if kind == "restart":
                cluster.stop_node(victim)
            else:
                cluster.kill(victim)
            if kind == "leader+writer":
                deployment.kill_writer()
            time.sleep(rng.uniform(1.0, 3.0))
            cluster.start_node(victim)
            if kind == "leader+writer":
                deployment.start_writer()
            catch_up.append(cluster.wait_current(stream))
        senders.stop()
        seconds = time.perf_counter() - started
        deployment.wait_applied(ports[0])
        result = verdict(count_events(deployment.db), senders.acked)
        stalls = _stalls(senders.timings, kills)
        return {"kind": kind, "trials": trials, "seconds": round(seconds, 1), "client_retries": senders.retries,
                **result, **stalls, "replies": dict(senders.replies),
                "catch_up_p50_s": round(percentile(sorted(catch_up), 0.5), 2) if catch_up else None}
    finally:
        deployment.stop()
        cluster.stop()


def _stalls(timings: list[tuple[float, float]], kills: list[float]) -> dict[str, Any]:
    """Request times (first attempt to 200) of requests begun within AFTER_KILL_S of a kill."""
    hit: list[float] = []
    worst: dict[int, float] = {}
    for begun, took in timings:
        for trial, killed in enumerate(kills):
            if killed <= begun < killed + AFTER_KILL_S:
                hit.append(took)
                worst[trial] = max(worst.get(trial, 0.0), 1000 * took)
                break
    hit.sort()
    stalls = sorted(worst.values())
    return {"after_kill_p50_ms": round(1000 * percentile(hit, 0.5)) if hit else None,
            "after_kill_p99_ms": round(1000 * percentile(hit, 0.99)) if hit else None,
            "stall_p50_ms": round(percentile(stalls, 0.5)) if stalls else None,
            "stall_p99_ms": round(percentile(stalls, 0.99)) if stalls else None}


def print_cluster_table(results: list[dict[str, Any]]) -> None:
    print("| killed | trials | requests answered 200 | stored | lost | applied twice | partly | client retries "
          "| after a kill p50 / p99 | stall per trial p50 / p99 | replies other than 200 |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['kind']} | {r['trials']} | {r['requests_acknowledged']:,} | {r['requests_stored']:,} | "
              f"{r['lost']} | {r['applied_twice']} | {r['partly']} | {r['client_retries']:,} | "
              f"{r['after_kill_p50_ms']} / {r['after_kill_p99_ms']} ms | {r['stall_p50_ms']} / {r['stall_p99_ms']} ms "
              f"| {r['replies'] or 'none'} |")
