"""What an operator relies on: metrics, access logs, the OpenAPI document, clean stops and clear start failures."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from ledger import IdentityLedger
from ledger.server.app import create_app
from tests.cli_helpers import assert_one_line_error, ledger
from tests.helpers import connected, event
from tests.server_helpers import API_KEY, SECRET_KEY


def upload(*events: Any) -> dict[str, Any]:
    return {"api_key": API_KEY, "events": list(events)}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus exposition, by name and sorted labels (also checks the format parses)."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_count_requests_replies_events_refusals_and_commits(http: httpx.Client, lg: IdentityLedger) -> None:
    before = samples(http.get("/metrics").text)
    assert http.post("/2/httpapi", json=upload(event("device-A"), event("device-A", "user-Ann"))).status_code == 200
    assert http.post("/2/httpapi", json=upload(event("null"))).status_code == 400
    assert http.post("/2/httpapi", json={"api_key": "wrong", "events": [event("device-B")]}).status_code == 400
    assert http.get("/v1/stats").status_code == 401
    reply = http.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    after = samples(reply.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert grew("ledger_events_ingested_total") == 2
    assert grew("ledger_http_replies_total", endpoint="/2/httpapi", code="200") == 1
    assert grew("ledger_http_replies_total", endpoint="/2/httpapi", code="400") == 2
    assert grew("ledger_http_replies_total", endpoint="/v1/stats", code="401") == 1
    assert grew("ledger_refusals_total", reason="invalid_events") == 1
    assert grew("ledger_refusals_total", reason="invalid_api_key") == 1
    assert grew("ledger_refusals_total", reason="unauthorized") == 1
    assert grew("ledger_commit_seconds_count") == 1
    assert after[("ledger_projection_lag_events", ())] == 0
    assert after[("ledger_http_requests_in_flight", ())] == 1  # the scrape itself


def test_projection_lag_is_the_shared_read_sides(open_ledger: Any, lg: IdentityLedger) -> None:
    """Another writer projects its requests in their own commit: nothing is behind, though this process
    has not read since. A read side left behind (a writer stopped between a commit and its catch-up) shows."""
    from ledger.server.metrics import Metrics

    metrics = Metrics(lg)
    other = open_ledger(lg.url)
    other.ingest([event("device-elsewhere"), event("device-elsewhere-2")])
    assert metrics.registry.get_sample_value("ledger_projection_lag_events") == 0
    with connected(lg.url) as connection:
        connection.execute(sa.text("UPDATE ledger_projection_positions SET position = position - 1 "
                                   "WHERE name = 'identity'"))
        connection.commit()
    assert metrics.registry.get_sample_value("ledger_projection_lag_events") == 1
    assert lg.position > 0 and lg.lag() == 1  # a read catches nothing up


def _access_lines(caplog: pytest.LogCaptureFixture, expected: int) -> list[dict[str, Any]]:
    """The access log's lines; the server thread writes each just after its reply is sent, so wait for them."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(record.getMessage()) for record in caplog.records if record.name == "ledger.access"]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


def test_one_json_access_log_line_per_request(http: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ledger.access"):
        http.post("/2/httpapi", json=upload(event("device-A")))
        http.get("/v1/identities", params={"user_id": "user-secret"})
        lines = _access_lines(caplog, 2)
    assert [(line["method"], line["endpoint"], line["status"]) for line in lines] == [
        ("POST", "/2/httpapi", 200), ("GET", "/v1/identities", 401)]
    assert set(lines[0]) == {"time", "method", "path", "endpoint", "status", "bytes", "ms", "client"}
    assert lines[0]["bytes"] > 0 and lines[0]["ms"] >= 0
    assert "user-secret" not in caplog.text  # query strings carry IDs: never logged


def test_the_openapi_document_validates_and_names_every_route(http: httpx.Client, lg: IdentityLedger) -> None:
    document = http.get("/openapi.json").json()
    validate(document)
    app = create_app(lg, [API_KEY], SECRET_KEY)
    # OpenAPI path templates have no converters: `{group_value:path}` is `{group_value}` there.
    api = {re.sub(r":\w+}", "}", route.path) for route in app.routes if route.path != "/ui"}  # type: ignore[attr-defined]
    assert api == set(document["paths"])  # the explorer's HTML pages are no part of the API


# -- the real process ------------------------------------------------------------------------------


def _script() -> str:
    return str(Path(sys.executable).parent / "ledger")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(db: Path, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [_script(), "serve", "--db", f"sqlite:///{db}", "--port", str(port), "--api-key", API_KEY,
         "--secret-key", SECRET_KEY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})


def _wait_until_up(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the server did not start")


def test_sigterm_drains_requests_and_closes_the_ledger(tmp_path: Path) -> None:
    """SIGTERM mid-traffic: exit 0, the WAL written back, every acknowledged request stored."""
    db, port = tmp_path / "served.db", _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _serve(db, port)
    acknowledged: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                insert_id = f"ins-{n}"
                try:
                    reply = client.post("/2/httpapi", json=upload(event(f"device-{n % 50:03d}", insert_id=insert_id)))
                except httpx.TransportError:
                    return  # the server has stopped listening
                if reply.status_code == 200:
                    acknowledged.append(insert_id)

    try:
        _wait_until_up(base, process)
        senders = [threading.Thread(target=traffic) for _ in range(3)]
        for sender in senders:
            sender.start()
        while len(acknowledged) < 30 and all(sender.is_alive() for sender in senders):
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        stop.set()
        if process.poll() is None:
            process.kill()
    for sender in senders:
        sender.join(60)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert not Path(f"{db}-wal").exists()
    with IdentityLedger(f"sqlite:///{db}", create=False) as lg:
        stored = {e.insert_id for e in lg.events(limit=1_000_000)}
    assert len(acknowledged) >= 30 and set(acknowledged) <= stored


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one process", "workers"])
def test_a_port_in_use_is_exit_code_3_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   workers: list[str]) -> None:
    """Before anything is opened (and before any worker starts)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = ledger(capsys, "serve", "--db", f"sqlite:///{tmp_path / 'never.db'}", "--port", str(port),
                        "--api-key", API_KEY, "--secret-key", SECRET_KEY, *workers)
    assert_one_line_error(result, 3, f"cannot listen on 127.0.0.1:{port}", "address already in use")
    assert not (tmp_path / "never.db").exists()  # nothing was opened
