"""The buffered deployment on a three-node JetStream cluster (benchmarks.nats_cluster, private ports and stores):
servers that start with the cluster, reads that never hang on it, and the fault trials in a reduced form."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.faults_cluster import CLUSTER_KINDS, run_cluster_kind
from benchmarks.nats_cluster import NatsCluster
from ledger.buffer.retention import erase_applied
from ledger.buffer.stream import BufferConfig, NatsLink
from ledger.server.app import create_app
from ledger.server.projects import ProjectConfig
from ledger.server.registry import open_projects
from tests.buffer_helpers import WEB_SECRET
from tests.server_helpers import running_app


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three nodes whose meta leader is not elected yet: the deployment must wait for it itself."""
    nodes = NatsCluster(tmp_path)
    try:
        for name in nodes.names:
            nodes.start_node(name)
        yield nodes
    finally:
        nodes.stop()


def upload(url: str, device: str) -> httpx.Response:
    return httpx.post(f"{url}/2/httpapi", json={"api_key": "web-key-1", "events": [
        {"event_type": "view", "device_id": device}]}, timeout=30)


def test_servers_started_with_the_cluster_store_every_upload_on_three_replicas_and_reads_never_hang(
        cluster: NatsCluster, configs: list[ProjectConfig]) -> None:
    buffer = f"{cluster.urls}?replicas=3&prefix=C"
    with open_projects(configs, buffer) as projects, running_app(create_app(projects)) as url:
        replies = [upload(url, f"device-{n}") for n in range(50)]
        assert [reply.status_code for reply in replies] == [200] * 50
        with NatsLink(BufferConfig.from_url(buffer)) as link:
            info = link.call(link.js.stream_info("C_web"), 10)
        assert (info.config.num_replicas, info.state.last_seq) == (3, 50)
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
        cluster.wait_current("C_web")  # raises if a replica never catches up
        for name in list(cluster.processes):
            cluster.kill(name)
        stats = httpx.get(f"{url}/v1/stats", auth=("web-key-1", WEB_SECRET), timeout=2)  # a hang is a timeout
        assert stats.status_code == 200
        answer = stats.json()
        assert (answer["lag"], answer["stream_sequence"], answer["applied_sequence"]) == (None, None, 0)
        refused = upload(url, "device-late")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"


def test_without_a_majority_of_replicas_an_upload_is_a_503_and_its_retry_is_stored_once(
        cluster: NatsCluster, configs: list[ProjectConfig]) -> None:
    """A 200 means two of the three nodes hold the request: with both followers gone the leader
    cannot commit, so the client is told to retry, and the retry, once they are back, is stored once
    (also when the leader did write the refused attempt and committed it when they came back)."""
    cluster.wait_meta_leader()
    buffer = f"{cluster.urls}?replicas=3&prefix=Q"
    with open_projects(configs, buffer) as projects, running_app(create_app(projects)) as url:
        assert upload(url, "device-first").status_code == 200
        leader = cluster.stream_leader("Q_web")
        followers = [name for name in cluster.names if name != leader]
        for name in followers:
            cluster.kill(name)
        refused = upload(url, "device-unreplicated")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        for name in followers:
            cluster.start_node(name)
        cluster.wait_current("Q_web")
        retried = upload(url, "device-unreplicated")
        assert retried.status_code == 200, retried.text
        with NatsLink(BufferConfig.from_url(buffer)) as link:
            assert link.stream_state("web", 10).messages == 2


def _holding(cluster: NatsCluster, value: bytes) -> list[str]:
    return sorted(str(path.relative_to(cluster.workdir)) for path in cluster.workdir.rglob("*")
                  if path.is_file() and value in path.read_bytes())


def _held_in_raft_logs_only(cluster: NatsCluster, value: bytes, timeout_s: float = 10.0) -> list[str]:
    """Where `value` is left once every replica has applied an erase: the leader answers the erase
    when it commits, and each follower applies it moments later, from its own raft log."""
    deadline = time.monotonic() + timeout_s
    while True:
        held = _holding(cluster, value)
        if all("/_js_/" in path for path in held) or time.monotonic() > deadline:
            return held
        time.sleep(0.1)


def test_an_erase_on_a_cluster_clears_the_stores_and_a_rolling_restart_the_raft_logs(cluster: NatsCluster) -> None:
    """What docs/privacy.md says of a cluster: each follower applies an erase moments after the leader
    answers it; each node's raft log of the stream keeps the erased requests until the node compacts
    it, which a graceful restart does."""
    victim = b"victim-user-9Kq"
    cluster.wait_meta_leader()
    with NatsLink(BufferConfig.from_url(f"{cluster.urls}?replicas=3&prefix=E")) as link:
        link.ensure_stream("web")
        for n in range(3):
            link.call(link.js.publish("E.web", victim + b"-%d" % n, headers={"Nats-Msg-Id": f"v{n}"}), 10)
        link.call(link.js.publish("E.web", b"someone-else", headers={"Nats-Msg-Id": "other"}), 10)
        assert erase_applied(link, "web", 3).erased == 3
        assert link.stream_state("web", 10).messages == 1
        held = _held_in_raft_logs_only(cluster, victim)
        assert held and all("/_js_/" in path for path in held)  # raft logs only, on each node
        for name in cluster.names:
            cluster.stop_node(name)
            cluster.start_node(name)
            cluster.wait_meta_leader()
            cluster.wait_current("E_web")
        assert _holding(cluster, victim) == []
        assert _holding(cluster, b"someone-else")


@pytest.mark.parametrize("kind", CLUSTER_KINDS)
def test_a_fault_trial_on_the_cluster_loses_nothing_and_answers_only_503_while_it_cannot_store(
        kind: str, tmp_path: Path) -> None:
    """The CI form of `python -m benchmarks.faults --cluster`: one trial of each kind."""
    result = run_cluster_kind(kind, 1, 7, tmp_path)
    assert result["requests_acknowledged"] > 0
    assert (result["lost"], result["applied_twice"], result["partly"]) == (0, 0, 0)
    assert result["requests_stored"] == result["requests_acknowledged"]
    http_replies = {reply for reply in result["replies"] if reply[0].isdigit()}
    assert http_replies <= {"503 Retry-After: 1"}, result["replies"]
