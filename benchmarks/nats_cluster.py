"""A three-node NATS JetStream cluster on loopback, for the cluster tests and `benchmarks.faults --cluster`.

Three `nats-server` processes on 127.0.0.1, each with its own client port, cluster port,
`server_name` and store directory, routed to the other two; ports are chosen free at run time.
`start` returns once the cluster has a JetStream meta leader (R3 streams created before that
fail), `kill`/`restart` a node with SIGKILL, `stop` ends every process and removes nothing
but what it made (the caller's directory).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import nats
import nats.js.errors
from nats.aio.client import Client

from benchmarks.buffered_processes import NATS_SERVER, free_port, wait_listening

CLUSTER = "ledger-test"
READY_TIMEOUT_S = 30.0
T = TypeVar("T")


class NatsCluster:
    """Three routed JetStream nodes named n1, n2, n3 under `workdir`."""

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.workdir = workdir
        self.names = [f"n{index + 1}" for index in range(size)]
        self.client_ports = {name: free_port() for name in self.names}
        self.route_ports = {name: free_port() for name in self.names}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._log = workdir / "nats-cluster.log"

    @property
    def urls(self) -> str:
        """The comma-separated client URLs, as `--buffer` takes them."""
        return ",".join(f"nats://127.0.0.1:{self.client_ports[name]}" for name in self.names)

    def url(self, name: str) -> str:
        return f"nats://127.0.0.1:{self.client_ports[name]}"

    def _config(self, name: str) -> Path:
        store = self.workdir / name
        store.mkdir(exist_ok=True)
        routes = ", ".join(f"nats-route://127.0.0.1:{self.route_ports[other]}" for other in self.names if other != name)
        config = self.workdir / f"{name}.conf"
        config.write_text(f"server_name: {name}\nlisten: 127.0.0.1:{self.client_ports[name]}\n"
                          f"jetstream {{\n  store_dir: \"{store}\"\n}}\n"
                          f"cluster {{\n  name: {CLUSTER}\n  listen: 127.0.0.1:{self.route_ports[name]}\n"
                          f"  routes: [{routes}]\n}}\n")
        return config

    def start(self) -> NatsCluster:
        for name in self.names:
            self.start_node(name)
        self.wait_meta_leader()
        return self

    def start_node(self, name: str) -> None:
        process = subprocess.Popen([NATS_SERVER, "-c", str(self._config(name))],
                                   stdout=self._log.open("ab"), stderr=subprocess.STDOUT)
        self.processes[name] = process
        wait_listening(process, self.client_ports[name], f"nats-server {name}")

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def stop_node(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_node(name)

    def wait_meta_leader(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until every running node's JetStream answers (a meta leader is elected and known)."""
        for name in self.processes:
            asyncio.run(self._ask(_meta_leader, timeout_s, [self.url(name)]))

    def stream_leader(self, stream: str, timeout_s: float = READY_TIMEOUT_S) -> str:  # waits for one
        """The node that leads `stream` now (waits while it is being elected)."""
        return asyncio.run(self._ask(lambda js: _stream_leader(js, stream), timeout_s))

    def replicas_current(self, stream: str) -> bool:
        """Whether `stream` has a leader and every other replica is online and current."""
        return asyncio.run(self._ask(lambda js: _replicas_current(js, stream), READY_TIMEOUT_S)) == "yes"

    def wait_current(self, stream: str, timeout_s: float = 60.0) -> float:
        """Seconds until every replica of `stream` is current again (a restarted node caught up)."""
        started = time.monotonic()
        while not self.replicas_current(stream):
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"{stream}: a replica did not catch up in {timeout_s:.0f} s")
            time.sleep(0.1)
        return time.monotonic() - started

    async def _ask(self, question: Callable[[Client], Awaitable[T]], timeout_s: float,
                   servers: list[str] | None = None) -> T:
        deadline = time.monotonic() + timeout_s
        running = servers or [self.url(name) for name in self.names if name in self.processes]
        while True:
            try:
                connection = await nats.connect(servers=running, connect_timeout=1, max_reconnect_attempts=1)
                try:
                    answer = await question(connection)
                finally:
                    await connection.close()
                if answer:
                    return answer
            except (TimeoutError, nats.errors.Error, nats.js.errors.Error, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the NATS cluster did not answer in {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


async def _meta_leader(connection: Client) -> bool:
    """Whether JetStream answers its account info: it does not until a meta leader is elected."""
    reply = await connection.request("$JS.API.INFO", b"", timeout=1)
    return "error" not in json.loads(reply.data)


async def _stream_leader(connection: Client, stream: str) -> str:
    info = await connection.jetstream().stream_info(stream)
    return (info.cluster.leader if info.cluster else None) or ""


async def _replicas_current(connection: Client, stream: str) -> str:
    info = await connection.jetstream().stream_info(stream)
    replicas = info.cluster.replicas if info.cluster and info.cluster.leader else None
    current = replicas is not None and len(replicas) == len(info.cluster.replicas or []) and all(
        peer.current and not peer.offline for peer in replicas)
    return "yes" if current and len(replicas or []) == info.config.num_replicas - 1 else "no"
