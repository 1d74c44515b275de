"""HTTP end-to-end: events/s through `POST /2/httpapi`, client threads sending batches (4 x 100 by default).

The server runs as a subprocess on 127.0.0.1 (`ledger serve` once the CLI exists,
else `ledger.server.serve` directly), so it has its own interpreter and GIL; the
clients are plain `http.client` keep-alive connections in this process, and each
request's latency (sent to answer read) is kept. When the server module is not there
yet the measurement is skipped with a note.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import percentile
from benchmarks.workload import Event, requests

API_KEY = "bench-api-key"
SECRET_KEY = "bench-secret-key"
BATCH = 100
CLIENTS = 4
START_TIMEOUT_S = 30.0
#: What `ledger serve --workers N` logs once every worker serves (`ledger.server.workers`).
WORKERS_READY = "workers serving"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(db_url: str, port: int, extra: tuple[str, ...] = ()) -> list[str] | None:
    """How to start the server, or None when `ledger.server` does not exist yet."""
    if importlib.util.find_spec("ledger.server") is None:
        return None
    script = Path(sys.executable).with_name("ledger")
    if importlib.util.find_spec("ledger.cli") is not None and script.exists():
        return [str(script), "serve", "--db", db_url, "--host", "127.0.0.1", "--port", str(port),
                "--api-key", API_KEY, "--secret-key", SECRET_KEY, *extra]
    code = ("import sys; from ledger.server.app import serve; "
            "serve(sys.argv[1], '127.0.0.1', int(sys.argv[2]), [sys.argv[3]], sys.argv[4])")
    return [sys.executable, "-c", code, db_url, str(port), API_KEY, SECRET_KEY]


def _wait_until_listening(server: subprocess.Popen[bytes], port: int, log_file: Path | None = None) -> bool:
    """Until the port takes connections and, with `--workers`, every worker serves (the parent listens
    before its workers have started: timing from there would count their start-up)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if log_file is None or WORKERS_READY in log_file.read_text(errors="replace"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def _post_all(port: int, bodies: list[bytes], sizes: list[int], clients: int = CLIENTS) -> dict[str, Any]:
    """Send every body from `clients` threads; count the events of requests answered with code 200."""
    lock = threading.Lock()
    pending = iter(range(len(bodies)))
    tally = {"events_ok": 0, "requests_failed": 0}
    failures: list[str] = []
    latencies: list[float] = []
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        barrier.wait()
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                break
            sent = time.perf_counter()
            connection.request("POST", "/2/httpapi", bodies[index], {"Content-Type": "application/json"})
            response = connection.getresponse()
            reply = response.read()
            latencies.append(time.perf_counter() - sent)
            ok = response.status == 200 and json.loads(reply).get("code") == 200
            with lock:
                if ok:
                    tally["events_ok"] += sizes[index]
                else:
                    tally["requests_failed"] += 1
                    failures.append(f"{response.status} {reply[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    return {**tally, "seconds": seconds, "first_failures": failures[:3],
            "p50_ms": round(1000 * percentile(latencies, 0.50), 2), "p99_ms": round(1000 * percentile(latencies, 0.99), 2)}


def measure_http(db_url: str, events: list[Event], log_file: Path, *, clients: int = CLIENTS, batch: int = BATCH,
                 server_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """Start the server on `db_url` (with `server_args`), send `events` in batches from `clients` threads, stop it."""
    port = _free_port()
    command = server_command(db_url, port, server_args)
    if command is None:
        return {"skipped": "ledger/server.py does not exist yet: HTTP end-to-end not measured"}
    batches = list(requests(events, batch))
    bodies = [json.dumps({"api_key": API_KEY, "events": batch}).encode() for batch in batches]
    with log_file.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not _wait_until_listening(server, port, log_file if "--workers" in server_args else None):
            tail = log_file.read_text(errors="replace")[-1500:]
            return {"skipped": f"the server did not start within {START_TIMEOUT_S:.0f}s: {tail}"}
        result = _post_all(port, bodies, [len(each) for each in batches], clients)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    rate = result["events_ok"] / result["seconds"] if result["seconds"] > 0 else 0.0
    return {"per_s": round(rate, 1), "events": len(events), "clients": clients, "batch": batch,
            "server": " ".join([Path(command[0]).name, command[1], *server_args]), **result}
