"""The explorer's pages over HTTP, without a browser: escaping, statuses, paging, as_of, refusals."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from ledger import IdentityLedger
from ledger.server.explorer.drawing import BOX_HEIGHT, LABEL, draw
from ledger.server.explorer.pages import PAGE, Steps
from ledger.server.traffic import MINUTES, IngestMeter
from projections.graph import person_graph
from tests.helpers import event
from tests.server_helpers import API_KEY, SECRET_KEY

HOSTILE = '<script>alert(1)</script>"\'&'


def page(query: httpx.Client, path: str, status: int = 200, **params: object) -> str:
    reply = query.get(path, params=params or None)  # type: ignore[arg-type]
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("text/html")
    assert "script-src" not in reply.headers["content-security-policy"]  # default-src 'none': no script runs
    return reply.text


def test_hostile_ids_and_properties_are_escaped_everywhere(lg: IdentityLedger, query: httpx.Client) -> None:
    lg.ingest([event("device-" + HOSTILE, HOSTILE, event_type=HOSTILE, event_properties={HOSTILE: HOSTILE},
                     user_properties={"$set": {HOSTILE: HOSTILE}})])
    shown = [page(query, "/ui/people/1"), page(query, "/ui/search", 404, q=HOSTILE + "x"),
             page(query, "/ui/people/1", as_of=lg.position)]
    for text in shown:
        assert "<script>" not in text and "alert(1)</script>" not in text
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;"
    assert escaped in shown[0] and escaped + "x" in shown[1]
    reply = query.get("/ui/search", params={"q": HOSTILE}, follow_redirects=False)
    assert (reply.status_code, reply.headers["location"]) == (303, "/ui/people/1")


@pytest.mark.parametrize("path", ["/ui/", "/ui/search?q=user-David", "/ui/people/1", "/ui/people/1?as_of=x",
                                  "/ui/nowhere", "/ui/explorer.css"])
@pytest.mark.parametrize("auth", [None, (API_KEY, "wrong"), ("not-a-key", SECRET_KEY)])
def test_every_page_needs_an_api_key_and_the_secret_key(merged: IdentityLedger, http: httpx.Client, path: str,
                                                        auth: tuple[str, str] | None) -> None:
    reply = http.get(path, auth=auth)
    assert reply.status_code == 401 and reply.headers["www-authenticate"] == 'Basic realm="ledger explorer"'
    assert "user-David" not in reply.text and "Sign in" in reply.text


@pytest.mark.parametrize("path, status, says", [
    ("/ui/people/3", 404, "no amplitude ID 3"),
    ("/ui/people/0", 404, "positive whole number"),
    ("/ui/people/x", 404, "positive whole number"),
    ("/ui/people/99999999999999999999", 404, "positive whole number"),
    ("/ui/people/1?as_of=x", 400, "as_of: give a position (an integer) or an ISO-8601 time"),
    ("/ui/people/1?as_of=-1", 400, "as_of: give a position (an integer) or an ISO-8601 time"),
    ("/ui/?as_of=1e3", 400, "as_of: give a position (an integer) or an ISO-8601 time"),
    ("/ui/?as_of=99999", 400, "as_of: position 99999 is past the end of the ledger"),
    ("/ui/?as_of=2999-01-01T00:00:00Z", 400, "is in the future"),
    ("/ui/people/1?page=0", 400, "page must be an integer"),
    ("/ui/people/1?page=abc", 400, "page must be an integer"),
    ("/ui/nowhere/at/all", 404, "no page at this address"),
    ("/ui/search?q=nobody-at-all", 404, "Nobody matches"),
])
def test_what_has_no_page_gets_an_html_page_with_its_status(merged: IdentityLedger, query: httpx.Client, path: str,
                                                             status: int, says: str) -> None:
    assert says in page(query, path, status)


def test_search_finds_user_device_and_amplitude_ids(merged: IdentityLedger, query: httpx.Client) -> None:
    for text, target in [("user-David", 1), ("device-Z", 1), ("1", 1), ("2", 2)]:
        reply = query.get("/ui/search", params={"q": text, "as_of": merged.position}, follow_redirects=False)
        assert (reply.status_code, reply.headers["location"]) == (303, f"/ui/people/{target}?as_of={merged.position}")
    assert query.get("/ui/search", params={"q": ""}, follow_redirects=False).headers["location"] == "/ui/"
    assert "Nobody matches" in page(query, "/ui/search", 404, q="user-David", as_of=0)


def test_an_id_naming_two_people_lists_both(lg: IdentityLedger, query: httpx.Client) -> None:
    lg.ingest([event("shared-name"), event("device-other", "shared-name")])  # a device ID and someone's user ID
    text = page(query, "/ui/search", q="shared-name")
    assert "Several people match" in text and "/ui/people/1" in text and "/ui/people/2" in text


def test_a_merged_amplitude_id_says_into_whom_and_when(merged: IdentityLedger, query: httpx.Client) -> None:
    [merge] = [entry for entry in merged.audit(amplitude_id=2) if entry.kind == "merged"]
    text = page(query, "/ui/people/2")
    assert "was merged into" in text and 'href="/ui/people/1"' in text and "at position" in text
    assert f'href="/ui/people/2?as_of={merge.position}">{merge.position}</a>' in text
    before = page(query, "/ui/people/2", as_of=merge.position - 1)
    assert "was merged into" not in before and 'id="amplitude-id">2<' in before


def test_as_of_shows_the_person_as_they_stood(merged: IdentityLedger, query: httpx.Client) -> None:
    changes = sorted({entry.position for entry in merged.audit(amplitude_id=1)})
    first = page(query, "/ui/people/1", as_of=changes[0])
    assert "As the ledger stood at position" in first and 'id="step-back"' not in first
    assert '<a href="/ui/people/1">Show now</a>' in first
    assert f'id="step-forward" rel="next" href="/ui/people/1?as_of={changes[1]}"' in first
    assert "No events." in first and 'id="merged-ids"><span class="muted">none' in first
    assert "The ledger has no amplitude ID 1 at position 0" in page(query, "/ui/people/1", 404, as_of=0)
    assert 'id="events">0<' in page(query, "/ui/", as_of=0)


def test_the_timeline_pages_newest_first(lg: IdentityLedger, query: httpx.Client) -> None:
    lg.ingest([event("device-many", event_type=f"step-{n}") for n in range(PAGE + 5)])
    newest = page(query, "/ui/people/1")
    assert f"Events 1–{PAGE} of {PAGE + 5}" in newest and f"step-{PAGE + 4}" in newest and "step-4<" not in newest
    assert 'href="/ui/people/1?page=2">older' in newest and "newer" not in newest
    oldest = page(query, "/ui/people/1", page=2)
    assert f"Events {PAGE + 1}–{PAGE + 5} of {PAGE + 5}" in oldest and "step-0<" in oldest
    assert "older &rarr;" not in oldest
    assert 'href="/ui/people/1">&larr; newer' in oldest
    assert "No events on this page" in page(query, "/ui/people/1", page=3)


def test_figures_and_the_ingest_rate(merged: IdentityLedger, query: httpx.Client) -> None:
    home = page(query, "/ui/")
    assert 'id="events">4<' in home and 'id="people">1<' in home and 'id="merges">1<' in home
    body = {"api_key": API_KEY, "events": [event("device-rate"), event("device-rate")]}
    assert query.post("/2/httpapi", json=body).status_code == 200
    assert "calls ingested by this server in the last" in page(query, "/ui/")


def test_the_meter_counts_per_minute_and_forgets_old_minutes() -> None:
    now = [600.0]
    meter = IngestMeter(clock=lambda: now[0])
    assert meter.per_minute() == []
    meter.record(3)
    now[0] += 30
    meter.record(2)
    now[0] += 60
    meter.record(1)
    assert meter.per_minute() == [0] * (MINUTES - 2) + [5, 1]
    now[0] += 60 * MINUTES
    assert meter.per_minute() == []


@pytest.mark.parametrize("at, previous, following", [(None, 9, None), (9, 5, None), (7, 5, 9), (5, 3, 9), (3, None, 5),
                                                     (1, None, 3)])
def test_steps_go_to_the_neighbouring_changes(at: int | None, previous: int | None, following: int | None) -> None:
    steps = Steps([3, 5, 9], at)
    assert (steps.previous, steps.next) == (previous, following)


def test_the_graph_draws_every_fact_with_labels_apart(lg: IdentityLedger) -> None:
    """A person with a binding, two merges and four devices: every edge drawn, no label over another."""
    lg.ingest([event("device-1", "user-Many")])
    for device in ("device-2", "device-3"):
        lg.ingest([event(device)])
        lg.ingest([event(device, "user-Many")])
    lg.ingest([event("device-4", "user-Many")])
    identity = lg.resolve(user_id="user-Many")
    assert identity is not None and len(identity.merged_amplitude_ids) == 2
    graph = person_graph(identity, lg.audit(user_id="user-Many"))
    drawing = draw(graph)
    assert [curve.edge for curve in drawing.curves] == graph.edges
    assert {box.node.kind for box in drawing.boxes} == {"user", "live", "merged", "device"}
    labels = [(curve.label_x - (0 if curve.anchor == "start" else LABEL[0] // 2), curve.label_y)
              for curve in drawing.curves]
    for n, (x, y) in enumerate(labels):
        assert all(abs(x - x2) >= LABEL[0] or abs(y - y2) >= LABEL[1] for x2, y2 in labels[n + 1:])
    assert all(box.x >= 0 and box.x + box.width <= drawing.width and box.y + BOX_HEIGHT <= drawing.height
               for box in drawing.boxes)


def test_groups_and_mappings_show_on_the_person_pages_and_the_group_page(lg: IdentityLedger,
                                                                        query: httpx.Client) -> None:
    lg.ingest([event("dev-ann", "user-ann", groups={"org": [HOSTILE, "a/b"]}), event("dev-bob", "user-bob")])
    lg.group_identify([{"group_type": "org", "group_value": HOSTILE, "group_properties": {"plan": HOSTILE}}])
    lg.map_user("user-ann", "user-bob")
    ann = page(query, "/ui/people/1")
    assert 'id="global-user-id"' in ann and "user-bob" in ann and "<script>" not in ann
    assert "/ui/groups/org/a%2Fb" in ann
    bob = page(query, "/ui/people/2")
    assert 'id="mapped-user-ids"' in bob and "user-ann" in bob
    shown = page(query, "/ui/groups/org/" + HOSTILE.replace("&", "%26").replace("#", "%23"))
    assert "<script>" not in shown and "&lt;script&gt;" in shown and 'href="/ui/people/1"' in shown
    assert 'href="/ui/people/1"' in page(query, "/ui/groups/org/a/b")
    page(query, "/ui/groups/org/nowhere", 404)
    assert "none" in page(query, "/ui/groups/org/a/b", as_of=lg.position)
def test_an_event_row_explains_why_the_event_is_there(merged: IdentityLedger, query: httpx.Client) -> None:
    moved = merged.events()[1]  # device-Z's anonymous event: arrived as 2, counts for 1 since the merge
    person = page(query, "/ui/people/1")
    assert f'explain={moved.position}#why' in person and 'id="why"' not in person
    why = page(query, "/ui/people/1", explain=moved.position)
    section = why[why.index('id="why"'):why.index("</section>", why.index('id="why"'))]
    assert f"Why the event at position {moved.position} is here" in section
    assert [kind for kind in ("created", "linked", "merged") if f'data-kind="{kind}"' in section] == [
        "created", "linked", "merged"]
    assert 'id="why"' not in page(query, "/ui/people/1", explain=1)  # no tracked event there: no section
    assert "explain must be an integer" in page(query, "/ui/people/1", 400, explain="x")


def test_a_past_page_by_time(merged: IdentityLedger, query: httpx.Client) -> None:
    first = merged.events()[0]
    then = dt.datetime.fromtimestamp(first.server_time / 1000, dt.UTC).isoformat()
    with merged.as_of(first.position) as view:
        assert view.identity(2) is None  # device-Z had no event yet
    ends = merged.as_of(dt.datetime.fromisoformat(then)).position
    assert f"The ledger has no amplitude ID 2 at position {ends}." in page(query, "/ui/people/2", 404, as_of=then)
    assert f"as_of={ends}" in page(query, "/ui/people/1", as_of=then)  # its links carry the position


def test_timeline_rows_show_the_group_properties_of_their_time(lg: IdentityLedger, query: httpx.Client) -> None:
    lg.group_identify([{"group_type": "org", "group_value": "acme", "group_properties": {"plan": "free"}}])
    lg.ingest([event("dev-ann", "user-ann", groups={"org": "acme"})])
    lg.group_identify([{"group_type": "org", "group_value": "acme", "group_properties": {"plan": HOSTILE}}])
    shown = page(query, "/ui/people/1")
    start = shown.index("<tr data-position=")
    row = shown[start:shown.index("</tr>", start)]
    assert 'href="/ui/groups/org/acme"' in row and 'class="group-properties"' in row and "free" in row
    assert "script" not in row  # today's properties are not the event's
