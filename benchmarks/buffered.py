"""`python -m benchmarks.buffered`: the buffered deployment against direct mode, in one run, on loopback.

- accepted events/s through `POST /2/httpapi` (batches of 100, CLIENTS threads spread over
  the servers) with 1, 2 and 4 `ledger serve --buffer` processes, and with one direct-mode
  `ledger serve` (the baseline of the ratios);
- applied events/s of one `ledger apply` writer working off the backlog the 1-server run left;
- accept-to-resolvable latency: while clients send at half the writer's measured rate, a
  probe uploads one event for a new device and polls the query API until it resolves.
Each figure is the median of `--repeats` runs; SQLite, the local NATS server (127.0.0.1:4222).
With `--cluster`, the 1, 2 and 4 buffered servers also run against a three-node JetStream
cluster started for the run (benchmarks.nats_cluster; streams replicated three times).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.buffered_processes import API_KEY, PROJECT, SECRET_KEY, Deployment, _basic
from benchmarks.measure import percentile
from benchmarks.nats_cluster import NatsCluster
from benchmarks.workload import DEFAULT_SEED, Workload, requests

BATCH = 100
CLIENTS = 8
SERVER_COUNTS = (1, 2, 4)
NATS_PORT = 4222


def post_all(ports: list[int], bodies: list[bytes], pace_per_s: float | None = None,
             stop: threading.Event | None = None) -> dict[str, Any]:
    """Send the bodies from CLIENTS keep-alive threads (thread i talks to ports[i % len]);
    with `pace_per_s`, at most that many requests per second in all."""
    lock = threading.Lock()
    pending = iter(range(len(bodies)))
    tally = {"requests_ok": 0, "requests_failed": 0}
    started = time.perf_counter()

    def client(port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while stop is None or not stop.is_set():
            with lock:
                index = next(pending, None)
            if index is None:
                break
            if pace_per_s:
                time.sleep(max(0.0, started + index / pace_per_s - time.perf_counter()))
            connection.request("POST", "/2/httpapi", bodies[index], {"Content-Type": "application/json"})
            response = connection.getresponse()
            ok = response.status == 200 and json.loads(response.read()).get("code") == 200
            with lock:
                tally["requests_ok" if ok else "requests_failed"] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(ports[i % len(ports)],)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**tally, "seconds": time.perf_counter() - started}


def bodies_of(events: int, seed: int) -> list[bytes]:
    return [json.dumps({"api_key": API_KEY, "events": batch}).encode()
            for batch in requests(Workload(seed).events(events), BATCH)]


def accept_run(workdir: Path, servers: int, bodies: list[bytes], events: int, *, buffered: bool,
               measure_writer: bool = False, cluster: str | None = None, db_url: str | None = None) -> dict[str, Any]:
    """Accepted events/s of `servers` servers (and the writer's applied rate); on SQLite in `workdir` unless `db_url`."""
    deployment = Deployment(workdir, nats_port=NATS_PORT, db_url=db_url, nats_urls=cluster,
                            replicas=3 if cluster else 1)
    try:
        ports = [deployment.start_server(buffered=buffered) for _ in range(servers)]
        sent = post_all(ports, bodies)
        assert sent["requests_failed"] == 0, sent
        result = {"accepted_per_s": events / sent["seconds"]}
        deployment.stop()
        if measure_writer:
            result["applied_per_s"] = _writer_rate(deployment, events)
        return result
    finally:
        deployment.stop()
        _drop_streams(deployment)


def _writer_rate(deployment: Deployment, events: int) -> float:
    """Applied events/s of one writer (in this process) working off the backlog of a run."""
    from ledger import IdentityLedger
    from ledger.buffer.stream import BufferConfig, NatsLink
    from ledger.buffer.writer import Writer

    with NatsLink(BufferConfig.from_url(deployment.buffer)) as link, IdentityLedger(deployment.db) as ledger:
        writer = Writer(ledger, link, PROJECT)
        last = link.last_sequence(PROJECT)
        started = time.perf_counter()
        while writer.applied < last:
            writer.apply_next(1.0)
        seconds = time.perf_counter() - started
        assert ledger.stats().events > 0
    return events / seconds


def latency_run(workdir: Path, bodies: list[bytes], pace_per_s: float, probes: int) -> dict[str, float]:
    """Accept-to-resolvable seconds of `probes` single-event uploads, under a paced load on 2 servers."""
    deployment = Deployment(workdir, nats_port=NATS_PORT)
    try:
        ports = [deployment.start_server() for _ in range(2)]
        deployment.start_writer()
        stop = threading.Event()
        load = threading.Thread(target=post_all, args=(ports, bodies, pace_per_s, stop))
        load.start()
        samples = _probe(ports, probes)
        stop.set()
        load.join()
        samples.sort()
        return {"p50_ms": 1000 * percentile(samples, 0.5), "p99_ms": 1000 * percentile(samples, 0.99),
                "probes": len(samples), "load_requests_per_s": pace_per_s}
    finally:
        deployment.stop()
        _drop_streams(deployment)


def _probe(ports: list[int], probes: int) -> list[float]:
    samples = []
    auth = {"Authorization": "Basic " + _basic(API_KEY, SECRET_KEY)}
    for _ in range(probes):
        device = f"probe-{uuid.uuid4().hex}"
        body = json.dumps({"api_key": API_KEY, "events": [{"event_type": "probe", "device_id": device}]})
        connection = http.client.HTTPConnection("127.0.0.1", ports[0], timeout=60)
        query = http.client.HTTPConnection("127.0.0.1", ports[1], timeout=60)
        connection.request("POST", "/2/httpapi", body, {"Content-Type": "application/json"})
        reply = connection.getresponse()
        reply.read()
        accepted = time.perf_counter()
        assert reply.status == 200
        while True:
            query.request("GET", f"/v1/identities?device_id={device}", headers=auth)
            answer = query.getresponse()
            answer.read()
            if answer.status == 200:
                samples.append(time.perf_counter() - accepted)
                break
            time.sleep(0.002)
        connection.close()
        query.close()
        time.sleep(0.05)
    return samples


def _drop_streams(deployment: Deployment) -> None:
    from ledger.buffer.stream import BufferConfig, NatsLink

    buffer = BufferConfig.from_url(deployment.buffer)
    try:
        with NatsLink(buffer) as link:
            link.call(link.js.delete_stream(buffer.stream(PROJECT)), 10)
    except Exception:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.buffered", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="events per run (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (default %(default)s)")
    parser.add_argument("--probes", type=int, default=100, help="latency probes (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--cluster", action="store_true", help="also against a three-node cluster, R3 streams")
    args = parser.parse_args()
    bodies = bodies_of(args.events, args.seed)
    runs: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-buffered-") as scratch, ExitStack() as stack:
        cluster = None
        if args.cluster:
            (Path(scratch) / "cluster").mkdir()
            cluster = stack.enter_context(NatsCluster(Path(scratch) / "cluster")).urls
        kinds = [("direct, 1 server", 1, False, None),
                 *((f"buffered, {n} server{'s' * (n > 1)}", n, True, None) for n in SERVER_COUNTS),
                 *((f"buffered, {n} server{'s' * (n > 1)}, 3-node cluster (R3)", n, True, cluster)
                   for n in SERVER_COUNTS if cluster)]
        for repeat in range(args.repeats):
            for index, (name, servers, buffered, urls) in enumerate(kinds):
                workdir = Path(scratch) / f"{repeat}-{index}"
                workdir.mkdir()
                result = accept_run(workdir, servers, bodies, args.events, buffered=buffered,
                                    measure_writer=buffered and servers == 1 and not urls, cluster=urls)
                for key, value in result.items():
                    label = name if key == "accepted_per_s" else "writer: applied"
                    runs.setdefault(label, []).append(value)
                print(f"run {repeat + 1}: {name}: {result}", flush=True)
        applied = statistics.median(runs["writer: applied"])
        workdir = Path(scratch) / "latency"
        workdir.mkdir()
        latency = latency_run(workdir, bodies * 4, applied / 2 / BATCH, args.probes)
    direct = statistics.median(runs["direct, 1 server"])
    print(f"\n{args.events:,} events per run, batches of {BATCH}, {CLIENTS} client threads, "
          f"median of {args.repeats} runs (python -m benchmarks.buffered "
          f"--events {args.events} --repeats {args.repeats} --probes {args.probes}{' --cluster' * args.cluster})\n")
    print("| what | events/s (median) | runs | vs direct |\n|---|---|---|---|")
    for label, values in runs.items():
        median = statistics.median(values)
        print(f"| {label} | {median:,.0f} | {', '.join(f'{v:,.0f}' for v in values)} | {median / direct:.2f}x |")
    print(f"\naccept-to-resolvable latency under {latency['load_requests_per_s'] * BATCH:,.0f} events/s "
          f"(half the writer's rate), {latency['probes']} probes: "
          f"p50 {latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms")


if __name__ == "__main__":
    main()
