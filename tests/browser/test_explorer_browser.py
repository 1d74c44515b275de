"""The explorer as a person uses it: a real chromium over a real server holding the five documented cases."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import Error as PlaywrightError

from ledger import IdentityLedger
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY

CASES = (
    [(d, None) for d in "ABBCAC"]
    + [("G", None), ("G", None), ("G", "John")]
    + [("K", "Zack"), ("L", "Zack")]
    + [("R", "Jane"), ("R", None), ("R", "Mary"), ("R", None), ("R", None)]
    + [("Y", "David"), ("Z", None), ("Z", "David"), ("Z", None)]
)
HOSTILE = "<script>alert(1)</script>"
# Who each search lands on: the documented amplitude IDs.
SEARCHES = {
    "device-A": 1, "device-B": 2, "device-C": 3,
    "user-John": 4, "device-G": 4,
    "user-Zack": 5, "device-K": 5, "device-L": 5,
    "user-Jane": 6, "user-Mary": 7, "device-R": 7,  # a shared device's anonymous events go to its last user
    "user-David": 8, "device-Y": 8, "device-Z": 8, "9": 9,
}


@pytest.fixture
def cases(lg: IdentityLedger, url: str, query: httpx.Client) -> IdentityLedger:
    """The five documented cases, each row one request to the server's HTTP V2 endpoint."""
    for device_id, user_id in CASES:
        body = {"api_key": API_KEY, "events": [event(f"device-{device_id}", user_id and f"user-{user_id}")]}
        assert query.post("/2/httpapi", json=body).status_code == 200
    return lg


@pytest.fixture
def page(browser: Browser, url: str) -> Iterator[Page]:
    """A signed-in tab; fails the test if any dialog (alert, confirm) ever opens."""
    context = browser.new_context(http_credentials={"username": API_KEY, "password": SECRET_KEY}, base_url=url)
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()
    assert dialogs == []


def search(page: Page, text: str) -> None:
    page.fill("header input[name=q]", text)
    with page.expect_navigation():
        page.press("header input[name=q]", "Enter")


def test_searching_each_case_lands_on_its_person(cases: IdentityLedger, page: Page) -> None:
    page.goto("/ui/")
    assert page.inner_text("#events") == "20" and page.inner_text("#people") == "8"
    assert page.inner_text("#merges") == "1" and page.inner_text("#position") == str(cases.position)
    assert "calls ingested by this server" in page.inner_text("#ingest-rate")
    for text, amplitude_id in SEARCHES.items():
        search(page, text)
        assert page.url.endswith(f"/ui/people/{amplitude_id}"), text
    search(page, "user-Nobody")
    assert "Nobody matches" in page.inner_text("main") and "user-Nobody" in page.inner_text("#no-match")


def test_the_merge_case_graph_audit_and_as_of(cases: IdentityLedger, page: Page) -> None:
    audit = cases.audit(user_id="user-David")
    [bound] = [entry.position for entry in audit if entry.kind == "bound"]
    [merged] = [entry.position for entry in audit if entry.kind == "merged"]
    page.goto("/ui/people/9")
    assert "was merged into" in page.inner_text("#merged-notice")
    assert f"at position {merged}" in page.inner_text("#merged-notice")
    page.click("#merged-into")
    assert page.url.endswith("/ui/people/8")
    assert page.inner_text("#user-id") == "user-David"
    assert page.inner_text("#merged-ids") == "9"
    assert page.get_attribute("svg.graph g.edge.bound", "data-position") == str(bound)
    assert page.get_attribute("svg.graph g.edge.merged", "data-position") == str(merged)
    assert f"merged · #{merged}" in (page.text_content("svg.graph g.edge.merged") or "")
    rows = page.locator("#audit tbody tr")
    trail = [(row.get_attribute("data-kind"), int(row.get_attribute("data-position") or 0)) for row in rows.all()]
    assert trail == [(entry.kind, entry.position) for entry in audit]
    assert ("bound", bound) in trail and ("merged", merged) in trail
    assert page.locator("#timeline tbody tr").count() == 4
    assert page.locator("#timeline .merged-from").inner_text() == "9"  # the event that arrived as 9

    while "as_of" not in page.url or int(page.url.rsplit("=", 1)[1]) >= merged:  # step back to before the merge
        with page.expect_navigation():
            page.click("#step-back")
    assert page.inner_text(".as-of strong") == page.url.rsplit("=", 1)[1]
    assert page.inner_text("#merged-ids") == "none"
    assert page.locator("svg.graph g.edge.merged").count() == 0
    assert page.locator("svg.graph g.edge.bound").count() == 1
    with page.expect_navigation():
        page.click("#step-forward")
    assert page.url.endswith(f"as_of={merged}") and page.inner_text("#merged-ids") == "9"
    page.goto(f"/ui/people/9?as_of={merged - 1}")  # before its merge, 9 was a person of its own
    assert page.inner_text("#amplitude-id") == "9" and page.locator("#merged-notice").count() == 0


def test_a_hostile_user_id_shows_as_text(cases: IdentityLedger, page: Page, query: httpx.Client) -> None:
    body = {"api_key": API_KEY, "events": [event("device-hostile", HOSTILE)]}
    assert query.post("/2/httpapi", json=body).status_code == 200
    page.goto("/ui/")
    search(page, HOSTILE)
    assert page.inner_text("#user-id") == HOSTILE
    assert HOSTILE in (page.text_content("svg.graph g.node.user") or "")
    search(page, HOSTILE + "<img src=x onerror=alert(2)>")
    assert "Nobody matches" in page.inner_text("main")
    assert page.locator("main img").count() == 0  # the fixture checks that no dialog ever opened


@pytest.mark.parametrize("password", [None, "wrong"])
def test_the_explorer_needs_the_secret_key(cases: IdentityLedger, browser: Browser, url: str,
                                           password: str | None) -> None:
    credentials = None if password is None else {"username": API_KEY, "password": password}
    context = browser.new_context(http_credentials=credentials, base_url=url)  # type: ignore[arg-type]
    for path in ("/ui/", "/ui/people/8", "/ui/search?q=user-David", "/ui/explorer.css"):
        response = context.request.get(path)
        assert response.status == 401
        assert response.headers["www-authenticate"] == 'Basic realm="ledger explorer"'
        assert "user-David" not in response.text()
        tab = context.new_page()
        try:  # chromium either shows the 401 page or gives up on the credentials it holds
            shown = tab.goto(path)
        except PlaywrightError as error:
            assert "ERR_INVALID_AUTH_CREDENTIALS" in str(error)
        else:
            assert shown is not None and shown.status == 401 and "user-David" not in tab.content()
    context.close()
