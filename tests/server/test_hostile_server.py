"""Hostile clients and broken ground under a real uvicorn server: slow bodies, a deleted file, bugs."""

from __future__ import annotations

import base64
import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ledger import IdentityLedger
from ledger.domain.model import AmplitudeIdentity, RuleViolation
from ledger.server.app import create_app
from ledger.server.connections import HeaderDeadlineProtocol
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY, running_app

JSON_TYPE = "application/json"


def upload(*events: dict[str, Any]) -> bytes:
    return msgspec.json.encode({"api_key": API_KEY, "events": list(events)})


def read_reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or 10 s pass)."""
    sock.settimeout(10)
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk


@pytest.mark.parametrize("path", ["/2/httpapi", "/batch", "/identify", "/v1/batch"])
def test_a_slow_body_gets_a_408_and_the_connection_is_closed(lg: IdentityLedger, path: str) -> None:
    app = create_app(lg, [API_KEY], SECRET_KEY, body_timeout=0.5)
    with running_app(app) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            content_type = "application/x-www-form-urlencoded" if path == "/identify" else "application/json"
            auth = base64.b64encode(f"{API_KEY}:".encode()).decode()
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                         f"Authorization: Basic {auth}\r\nContent-Length: 1000\r\n\r\n{{\"api_key\"".encode())
            started = time.monotonic()
            reply = read_reply(sock)
            waited = time.monotonic() - started
        assert reply.startswith(b"HTTP/1.1 408 "), reply
        assert reply.endswith(b'{"code":408,"error":"Request body not received within 0.5 seconds"}')
        assert waited < 5  # closed, not held until the client gives up
        assert httpx.post(f"{base_url}/2/httpapi", content=upload(event("device-A")),
                          headers={"Content-Type": "application/json"}).json()["code"] == 200
    assert lg.stats().events == 1


def test_a_deleted_sqlite_file_fails_uploads_and_healthz_loudly(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with IdentityLedger(f"sqlite:///{path}") as lg, running_app(create_app(lg, [API_KEY], SECRET_KEY)) as base_url:
        headers = {"Content-Type": "application/json"}
        assert httpx.post(f"{base_url}/2/httpapi", content=upload(event("device-A")), headers=headers).status_code == 200
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.remove(f"{path}{suffix}")
        lost = httpx.post(f"{base_url}/2/httpapi", content=upload(event("device-B")), headers=headers)
        health = httpx.get(f"{base_url}/healthz")
    for reply in (lost, health):
        assert reply.status_code == 500
        body = reply.json()
        assert body["code"] == 500 and "was deleted or replaced" in body["error"] and "restart" in body["error"]


def test_a_broken_rule_is_a_500_not_a_retryable_503(lg: IdentityLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise RuleViolation("a bug in the rules")

    monkeypatch.setattr(AmplitudeIdentity, "record_user_id", broken)
    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as base_url:
        reply = httpx.post(f"{base_url}/2/httpapi", content=upload(event("device-A", "user-A")),
                           headers={"Content-Type": "application/json"}, timeout=30)
    assert reply.status_code == 500 and "retry-after" not in reply.headers
    assert reply.json() == {"code": 500, "error": "Internal server error"}


@pytest.mark.parametrize("query", ["/v1/identities?user_id=%00", "/v1/identities?device_id=a%00b",
                                   "/v1/audit?device_id=%00", "/v1/audit?user_id=%00"])
def test_nul_in_a_looked_up_id_is_a_400(query: str, lg: IdentityLedger) -> None:
    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as base_url:
        reply = httpx.get(f"{base_url}{query}", auth=(API_KEY, SECRET_KEY))
    assert reply.status_code == 400
    assert reply.json()["error"].endswith("must not contain NUL")


def test_serve_bounds_connections_and_idle_keep_alive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    import ledger.server.app as server
    from ledger.server import lifecycle

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.update(config=self.config))
    server.serve(db_url=f"sqlite:///{tmp_path / 'l.db'}", host="127.0.0.1", port=0, api_keys=[API_KEY],
                 secret_key=SECRET_KEY)
    config = seen["config"]
    assert config.limit_concurrency == lifecycle.MAX_CONCURRENCY == 1000
    assert config.timeout_keep_alive == lifecycle.KEEP_ALIVE_TIMEOUT == 5
    assert config.http is HeaderDeadlineProtocol


class QuickHeaderDeadline(HeaderDeadlineProtocol):
    header_timeout = 0.5


def test_headers_that_never_end_get_the_connection_closed(lg: IdentityLedger) -> None:
    app = create_app(lg, [API_KEY], SECRET_KEY)
    with running_app(app, http=QuickHeaderDeadline) as base_url:
        port = int(base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow, httpx.Client(base_url=base_url) as http:
            slow.sendall(b"POST /2/httpapi HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            started = time.monotonic()
            # Meanwhile another client is served, request after request on one kept-alive connection.
            for device in ("device-A", "device-B"):
                reply = http.post("/2/httpapi", content=upload(event(device)), headers={"Content-Type": JSON_TYPE})
                assert reply.json()["code"] == 200
                time.sleep(0.3)
            assert read_reply(slow) == b""  # closed, not held
            assert time.monotonic() - started < 5
    assert lg.stats().events == 2
