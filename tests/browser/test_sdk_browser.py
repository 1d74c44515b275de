"""The browser SDKs in a real browser, and the Node SDKs in node, against `ledger serve`.

A visitor browses a shop anonymously, signs in, signs out (the SDK's `reset()` gives the browser a
new device ID), signs in again, then does the same in a second browser; a second person signs in
there after her. The page (tests/browser_sdks/site.html) is on 127.0.0.1 and the ledger on
localhost, so every upload is cross-origin: preflights, CORS headers and beacons are the browser's
own. The identities are then read back through the query API and must follow the ledger's rules:
one person for Alice with both anonymous stretches merged into her, and Bob a separate person.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from starlette.datastructures import Headers

from ledger import IdentityLedger
from ledger.server.app import create_app
from tests.sdk_browser import LOOPBACK, SDKS, node
from tests.server.test_server_sdks import CASES, EXPECTED, device, identity, original_amplitude_ids, user
from tests.server_helpers import API_KEY, SECRET_KEY, query_client, running_app

ALICE, BOB = "alice@example.com", "bob@example.com"


class Visitor:
    """One browser (a Playwright context: its own cookies and storage) on the shop's page."""

    def __init__(self, browser: Any, site: str, sdk: str, ledger: str) -> None:
        self.context = browser.new_context()
        self.elsewhere: list[str] = []
        self.context.on("request", self._outside)
        self.page = self.context.new_page()
        self.address = f"{site}/site.html?" + urlencode({"sdk": sdk, "ledger": ledger, "key": API_KEY})
        self.open()

    def _outside(self, request: Any) -> None:
        if urlsplit(request.url).hostname not in LOOPBACK:
            self.elsewhere.append(request.url)

    def open(self) -> None:
        """Load (or reload) the page and wait for the SDK to be ready."""
        self.page.goto(self.address)
        self.page.evaluate("window.ready")

    def do(self, action: str, *args: str) -> Any:
        return self.page.evaluate(f"site.{action}(...{json.dumps(args)})")

    def send(self, action: str, *args: str) -> None:
        """An SDK call whose delivery the page awaits; the SDK must report it delivered."""
        result = self.do(action, *args)
        assert result["code"] == 200, result

    def ids(self) -> dict[str, str | None]:
        return self.do("ids")

    def close(self) -> None:
        self.context.close()
        assert self.elsewhere == [], "the SDK tried to reach a host other than the ledger"


@dataclass
class Ledger:
    url: str  # on another origin than the page: localhost, not 127.0.0.1
    query: httpx.Client
    received: list[tuple[str, str, str]]  # (method, path, Content-Type) of every request, in order


@pytest.fixture
def ledger(lg: IdentityLedger) -> Iterator[Ledger]:
    """`ledger serve` over the test's ledger, noting how each request arrived."""
    app = create_app(lg, [API_KEY], SECRET_KEY)
    received: list[tuple[str, str, str]] = []

    async def noting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            received.append((scope["method"], scope["path"], Headers(scope=scope).get("content-type", "")))
        await app(scope, receive, send)

    with running_app(noting) as base_url, query_client(base_url) as query:  # type: ignore[arg-type]
        yield Ledger(base_url.replace("127.0.0.1", "localhost"), query, received)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (up to 20 s) for something the browser sends on its own schedule, such as a beacon."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("sdk", ["amplitude", "segment"])
def test_browsing_signing_in_and_out_in_two_browsers(sdk: str, chromium: Any, running_site: str,
                                                     ledger: Ledger) -> None:
    query, ledger_url = ledger.query, ledger.url
    # Anonymous browsing; Amplitude leaves the last page's event queued for its page-hide beacon.
    first = Visitor(chromium, running_site, sdk, ledger_url)
    first.send("send", "Viewed Home")
    shop_device = first.ids()["device_id"]
    first.send("send", "Viewed Product")
    if sdk == "amplitude":
        first.do("track", "Viewed Cart")
        first.open()  # page hide: the queued event leaves by navigator.sendBeacon, as text/plain
        wait_for(lambda: query.get("/v1/stats").json()["events"] == 3, "the beacon's event stored")
    else:
        first.send("send", "Viewed Cart")
        first.open()
    assert first.ids() == {"device_id": shop_device, "user_id": None}, "the browser keeps its device ID"
    # Sign in, sign out (a new device ID), browse, sign in again on the same browser.
    first.send("login", ALICE)
    first.send("logout")
    first.send("send", "Viewed Home")
    after_logout = first.ids()
    assert after_logout["user_id"] is None and after_logout["device_id"] not in (None, shop_device)
    first.send("login", ALICE)
    # A second browser: Alice browses and signs in; she signs out and Bob signs in there.
    second = Visitor(chromium, running_site, sdk, ledger_url)
    second.send("send", "Viewed Home")
    laptop_device = second.ids()["device_id"]
    second.send("login", ALICE)
    second.send("logout")
    second.send("login", BOB)
    bob_device = second.ids()["device_id"]
    second.send("send", "Viewed Home")
    first.close()
    second.close()
    # How the SDKs sent it all: every post preflighted, and Amplitude's page-hide beacon as text/plain.
    posts = {(path, kind) for method, path, kind in ledger.received if method == "POST"}
    preflighted = {path for method, path, _ in ledger.received if method == "OPTIONS"}
    if sdk == "amplitude":
        assert posts == {("/2/httpapi", "application/json"), ("/2/httpapi", "text/plain;charset=UTF-8")}
    else:
        assert posts == {("/v1/t", "text/plain"), ("/v1/i", "text/plain")}
    assert preflighted == {path for path, _ in posts}

    alice = identity(query, user_id=ALICE)
    assert alice["amplitude_id"] == 1 and alice["merged_amplitude_ids"] == [2, 3]
    assert set(alice["device_ids"]) >= {shop_device, after_logout["device_id"], laptop_device}
    merges = query.get("/v1/merges").json()["merges"]
    assert [(m["amplitude_id"], m["merged_amplitude_id"]) for m in merges] == [(2, 1), (3, 1)]
    for device_id in (shop_device, after_logout["device_id"], laptop_device):
        assert identity(query, device_id=device_id)["amplitude_id"] == 1
    bob = identity(query, user_id=BOB)
    assert bob["amplitude_id"] == 4 and bob["merged_amplitude_ids"] == [] and bob["device_ids"][0] == bob_device
    assert identity(query, device_id=bob_device)["amplitude_id"] == 4

    signed_in = ["Signed In"] if sdk == "amplitude" else []  # Segment signs in with identify: no event
    timeline = query.get("/v1/identities/1/timeline").json()["events"]
    assert [(e["event_type"], e["original_amplitude_id"]) for e in timeline] == [
        ("Viewed Home", 1), ("Viewed Product", 1), ("Viewed Cart", 1),
        *[(name, 1) for name in signed_in], ("Signed Out", 1),
        ("Viewed Home", 2), *[(name, 1) for name in signed_in],
        ("Viewed Home", 3), *[(name, 1) for name in signed_in], ("Signed Out", 1),
    ]
    bobs = query.get("/v1/identities/4/timeline").json()["events"]
    assert [e["event_type"] for e in bobs] == [*signed_in, "Viewed Home"]


def test_a_page_on_an_origin_the_operator_did_not_name_cannot_upload(chromium: Any, running_site: str,
                                                                      lg: IdentityLedger) -> None:
    """Refused with and without a preflight: a text/plain post (as a beacon sends) reaches the server and gets 403."""
    app = create_app(lg, [API_KEY], SECRET_KEY, cors_origins=["https://shop.example.com"])
    with running_app(app) as base_url:
        visitor = Visitor(chromium, running_site, "amplitude", base_url.replace("127.0.0.1", "localhost"))
        outcomes = visitor.page.evaluate(f"""async (ledger) => {{
            const body = JSON.stringify({{api_key: "{API_KEY}", events: [{{event_type: "view", device_id: "device-A"}}]}});
            const post = (type) => fetch(ledger + "/2/httpapi", {{method: "POST", headers: {{"Content-Type": type}}, body}})
                .then((reply) => reply.status, (error) => error.name);
            return [await post("application/json"), await post("text/plain")];
        }}""", base_url.replace("127.0.0.1", "localhost"))
        visitor.close()
    assert outcomes == ["TypeError", "TypeError"], "the browser must not let the page read either reply"
    assert lg.position == 0


@pytest.mark.parametrize("sdk", ["amplitude", "segment"])
def test_node_sdks_replay_the_five_documented_cases(sdk: str, url: str, query: httpx.Client) -> None:
    rows = [[device(letter), user(name)] for case in CASES for letter, name in case]
    done = subprocess.run([node(), str(SDKS / "node_cases.cjs"), sdk, url, API_KEY, json.dumps(rows)],
                          cwd=SDKS, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ids = iter(json.loads(done.stdout))
    sent = [[next(ids) for _ in case] for case in CASES]
    assert [original_amplitude_ids(query, ids) for ids in sent] == EXPECTED
    merges = query.get("/v1/merges").json()["merges"]
    assert [(m["amplitude_id"], m["merged_amplitude_id"]) for m in merges] == [(9, 8)]


def test_node_sdk_set_group_and_group_identify(url: str, query: httpx.Client) -> None:
    done = subprocess.run([node(), str(SDKS / "node_cases.cjs"), "amplitude-groups", url, API_KEY,
                           json.dumps([["device-gail", "user-Gail"]])], cwd=SDKS, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    gail = identity(query, user_id="user-Gail")
    assert gail["groups"] == {"org id": ["1234", "5678"]}
    group = query.get("/v1/groups/org id/1234").json()
    assert (group["properties"], group["amplitude_ids"]) == ({"plan": "Enterprise", "seats": 10}, [gail["amplitude_id"]])
    assert query.get("/v1/stats").json()["events"] == 0


def test_browser_sdk_set_group_and_group_identify(chromium: Any, running_site: str, ledger: Ledger) -> None:
    visitor = Visitor(chromium, running_site, "amplitude", ledger.url)
    visitor.send("login", ALICE)
    visitor.send("setGroup", "org id", "1234")
    visitor.send("groupIdentify", "org id", "1234", "plan", "Enterprise")
    visitor.close()
    alice = identity(ledger.query, user_id=ALICE)
    assert alice["groups"] == {"org id": ["1234"]} and alice["user_properties"]["org id"] == "1234"
    group = ledger.query.get("/v1/groups/org id/1234").json()
    assert (group["properties"], group["amplitude_ids"]) == ({"plan": "Enterprise"}, [alice["amplitude_id"]])
