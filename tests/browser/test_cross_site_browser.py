"""The cross-site request forgery a hostile tester ran, in a real chromium: it must queue no deletion.

An operator is signed in to the explorer (the browser answers Basic challenges with the API key
and the secret key); a page on another site auto-submits a form to the privacy API.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from ledger import IdentityLedger
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY, running_app

PATH = "/api/2/deletions/users"


def attacker_site(target: str) -> Starlette:
    """Another web site whose page posts a deletion request to `target` as soon as it loads."""
    page = f"""<!doctype html><title>Cute cats</title>
<form method="POST" action="{target}{PATH}">
  <input name="user_ids" value="alice@example.org"><input name="requester" value="attacker">
</form>
<script>document.forms[0].submit()</script>"""

    async def home(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", home)])


@pytest.fixture
def signed_in(browser: Browser, url: str) -> Iterator[Page]:
    """A tab of an operator who has the explorer open (the browser holds the credentials)."""
    context = browser.new_context(http_credentials={"username": API_KEY, "password": SECRET_KEY})
    tab = context.new_page()
    shown = tab.goto(f"{url}/ui/")
    assert shown is not None and shown.status == 200
    yield tab
    context.close()


def test_a_page_of_another_site_cannot_queue_a_deletion(lg: IdentityLedger, url: str, query: httpx.Client,
                                                        signed_in: Page) -> None:
    lg.ingest([event("device-alice", "alice@example.org")])
    with running_app(attacker_site(url)) as attacker:
        # localhost, not 127.0.0.1: another site, as the browser counts sites
        evil = attacker.replace("127.0.0.1", "localhost")
        with signed_in.expect_response(lambda response: response.url.endswith(PATH)) as posted:
            signed_in.goto(evil)
        answer = posted.value
        assert answer.request.method == "POST"
        assert answer.request.headers.get("origin") == evil
        assert answer.status == 403, answer.text()
        assert "Cross-site request refused" in answer.text()
    listed = query.get(PATH, params={"start_day": "2023-11-01", "end_day": "2023-11-30"})
    assert (listed.status_code, listed.json()) == (200, [])
    assert lg.resolve(user_id="alice@example.org") is not None


def test_the_same_form_on_the_servers_own_origin_still_works(lg: IdentityLedger, url: str, query: httpx.Client,
                                                             signed_in: Page) -> None:
    """The guard refuses other sites, not browsers: a page of the ledger's own origin may post."""
    lg.ingest([event("device-alice", "alice@example.org")])
    signed_in.goto(f"{url}/ui/")
    with signed_in.expect_response(lambda response: response.url.endswith(PATH)) as posted:
        signed_in.evaluate("""([path]) => {
            const form = document.createElement('form');
            form.method = 'POST'; form.action = path;
            for (const [name, value] of [['user_ids', 'alice@example.org'], ['requester', 'operator']]) {
                const input = document.createElement('input'); input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form); form.submit();
        }""", [PATH])
    assert posted.value.status == 200, posted.value.text()
    listed = query.get(PATH, params={"start_day": "2023-11-01", "end_day": "2023-11-30"}).json()
    assert [job["status"] for job in listed] == ["staging"]
