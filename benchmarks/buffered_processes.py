"""The processes of a buffered deployment on loopback, for the benchmarks and the fault trials.

`Deployment` writes a projects file, and starts, kills (-9) and restarts `ledger serve
--buffer` processes, the `ledger apply` writer and, optionally, a private nats-server
(its own port and store directory, so a restart trial never touches the shared one).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

API_KEY = "bench-api-key"
SECRET_KEY = "bench-secret-key-of-32-characters"
PROJECT = "bench"
START_TIMEOUT_S = 30.0
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
LEDGER = [sys.executable, "-c", "import sys; from ledger.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit {process.poll()})")
        time.sleep(0.05)


class Deployment:
    """One project on SQLite in `workdir`, its stream under a fresh prefix."""

    def __init__(self, workdir: Path, *, nats_port: int | None = None, db_url: str | None = None,
                 nats_urls: str | None = None, replicas: int = 1) -> None:
        """`nats_urls`: a cluster's client URLs (see benchmarks.nats_cluster) instead of one node."""
        self.workdir = workdir
        self.db = db_url or f"sqlite:///{workdir / 'bench.db'}"
        self.own_nats = nats_port is None and nats_urls is None
        self.nats_port = nats_port or free_port()
        servers = nats_urls or f"nats://127.0.0.1:{self.nats_port}"
        self.buffer = f"{servers}?prefix=B{uuid.uuid4().hex[:10]}&replicas={replicas}"
        self.projects = workdir / "projects.toml"
        self.projects.write_text(f'[projects.{PROJECT}]\napi_keys = ["{API_KEY}"]\n'
                                 f'secret_key = "{SECRET_KEY}"\ndb = "{self.db}"\n')
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.writer: subprocess.Popen[bytes] | None = None
        self.nats: subprocess.Popen[bytes] | None = None
        self._log = workdir / "processes.log"

    # -- processes -------------------------------------------------------------------

    def start_nats(self) -> None:
        store = self.workdir / "nats"
        store.mkdir(exist_ok=True)
        self.nats = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.nats_port), "-js",
                                      "-sd", str(store)], stdout=self._log.open("ab"), stderr=subprocess.STDOUT)
        wait_listening(self.nats, self.nats_port, "nats-server")

    def start_server(self, port: int | None = None, *, buffered: bool = True) -> int:
        port = port or free_port()
        command = [*LEDGER, "serve", "--projects", str(self.projects), "--host", "127.0.0.1", "--port", str(port)]
        process = subprocess.Popen([*command, "--buffer", self.buffer] if buffered else command,
                                   stdout=self._log.open("ab"), stderr=subprocess.STDOUT)
        wait_listening(process, port, "ledger serve")
        self.servers[port] = process
        return port

    def start_writer(self) -> None:
        self.writer = subprocess.Popen([*LEDGER, "apply", "--projects", str(self.projects), "--buffer", self.buffer],
                                       stdout=self._log.open("ab"), stderr=subprocess.STDOUT)

    def kill_server(self, port: int) -> None:
        _kill(self.servers.pop(port))

    def kill_writer(self) -> None:
        assert self.writer is not None
        _kill(self.writer)
        self.writer = None

    def kill_nats(self) -> None:
        assert self.nats is not None
        _kill(self.nats)
        self.nats = None

    def stop(self) -> None:
        for process in [*self.servers.values(), self.writer, self.nats]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    _kill(process)
        self.servers.clear()
        self.writer = self.nats = None

    # -- asking ----------------------------------------------------------------------

    def stats(self, port: int) -> dict[str, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/stats")
        request.add_header("Authorization", "Basic " + _basic(API_KEY, SECRET_KEY))
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def wait_applied(self, port: int, timeout_s: float = 120.0) -> dict[str, Any]:
        """Poll the query API until the writer has applied everything the stream holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                stats = self.stats(port)
                if stats.get("lag") == 0:
                    return stats
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the writer did not catch up")
            time.sleep(0.05)


def _kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()
