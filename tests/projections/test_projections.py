"""The read side: crash safety of catch-up and rebuild, time travel, reopening, user properties."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from ledger import IdentityLedger
from projections import projector as projector_module
from projections.runner import Progress
from tests.domain.test_validation import snapshot
from tests.helpers import Clock, connected, event

DEVICES = ["device-A", "device-B", "device-G", "device-R", "device-Y", "device-Z"]
USERS = ["user-John", "user-Jane", "user-Mary", "user-David"]


def scenario() -> list[list[dict[str, Any]]]:
    """Requests touching every kind of fact: anonymous use, sign-in, shared device, merge, properties."""
    return [
        [event("device-A", insert_id="a1"), event("device-B", insert_id="b1")],
        [event("device-G", insert_id="g1"), event("device-G", "user-John", insert_id="g2")],
        [event("device-R", "user-Jane", insert_id="r1", user_properties={"plan": "free"}),
         event("device-R", insert_id="r2")],
        [event("device-R", "user-Mary", insert_id="r3"), event("device-R", insert_id="r4"),
         event("device-R", insert_id="r4")],
        [event("device-Y", "user-David", insert_id="y1", user_properties={"$set": {"plan": "pro"}})],
        [event("device-Z", insert_id="z1", user_properties={"$set": {"color": "red", "plan": "trial"}})],
        [event("device-Z", "user-David", insert_id="z2"), event("device-Z", insert_id="z3")],
        [event("device-Z", event_type="$identify", insert_id="z4", user_properties={"$add": {"visits": 2}})],
    ]


def answers(view: Any) -> dict[str, Any]:
    """Everything a reader can ask, for comparing two ledgers."""
    people = {d: view.resolve(device_id=d) for d in DEVICES} | {u: view.resolve(user_id=u) for u in USERS}
    ids = {person.amplitude_id for person in people.values() if person}
    return {
        "people": people,
        "stats": view.stats(),
        "merges": view.merges(),
        "timelines": {a: view.timeline(a) for a in ids},
        "audit": {d: [(a.kind, a.amplitude_id, a.insert_id) for a in view.audit(device_id=d)] for d in DEVICES},
    }


def feed(lg: IdentityLedger, requests: list[list[dict[str, Any]]]) -> list[int]:
    return [lg.ingest(request).position for request in requests]


def test_user_properties_follow_the_operations_and_the_merge(lg: IdentityLedger) -> None:
    feed(lg, scenario())
    david = lg.resolve(user_id="user-David")
    assert david is not None
    # David's own "pro" wins over the anonymous "trial"; "color" only the merged one had is kept.
    assert david.user_properties == {"color": "red", "plan": "pro", "visits": 2}
    stamps = [e.user_properties for e in lg.timeline(david.amplitude_id)]
    assert stamps == [{"plan": "pro"}, {"color": "red", "plan": "trial"}, {"color": "red", "plan": "pro"},
                      {"color": "red", "plan": "pro"}]
    assert lg.stats().events == 12  # the $identify call counts no event, the duplicate r4 is dropped


def test_identify_binds_like_a_track_call_but_counts_no_event(lg: IdentityLedger) -> None:
    lg.ingest([event("device-new")])
    report = lg.identify([{"device_id": "device-new", "user_id": "user-new", "user_properties": {"age": 3}}])
    assert report.ingested == 1
    person = lg.resolve(device_id="device-new")
    assert person is not None and (person.user_id, person.user_properties) == ("user-new", {"age": 3})
    assert lg.stats().events == 1


def test_reopening_a_database_gives_the_same_answers(open_ledger: Callable[..., IdentityLedger],
                                                     new_url: Callable[[], str]) -> None:
    url = new_url()
    first = open_ledger(url)
    feed(first, scenario())
    before = answers(first)
    first.close()
    again = open_ledger(url, clock=Clock(1_800_000_000_000))
    assert answers(again) == before
    # New identities continue the sequence: amplitude IDs are never reused.
    again.ingest([event("device-after-reopen")])
    assert again.resolve(device_id="device-after-reopen").amplitude_id == 8  # type: ignore[union-attr]


def test_as_of_every_position_equals_a_ledger_fed_only_what_came_before(
    open_ledger: Callable[..., IdentityLedger],
) -> None:
    requests = scenario()
    lg = open_ledger()
    boundaries = feed(lg, requests)
    for count, position in enumerate(boundaries, start=1):
        fresh = open_ledger()
        feed(fresh, requests[:count])
        with lg.as_of(position) as past:
            assert answers(past) == answers(fresh)
    tracked = [e.position for e in lg.events()]
    for position in range(boundaries[-1] + 1):
        with lg.as_of(position) as past:
            assert past.stats().events == sum(1 for p in tracked if p <= position)
    assert answers(lg) == answers(lg.as_of(lg.position))


def test_as_of_leaves_live_state_alone(lg: IdentityLedger) -> None:
    positions = feed(lg, scenario())
    before = snapshot(lg)
    with lg.as_of(positions[2]) as past:
        assert past.stats() != lg.stats()
    assert snapshot(lg) == before


class Crash(Exception):
    pass


def crash_on_flush(monkeypatch: pytest.MonkeyPatch, *, after: int) -> None:
    """Make the projector die in the middle of its `after`-th flush, after some rows were written."""
    original = projector_module.Projector.flush
    calls = {"n": 0}

    def flaky(self: projector_module.Projector, sink: Any, execute: Any) -> None:
        calls["n"] += 1
        if calls["n"] == after:
            statement, rows = next(iter(self._inserts.items()))
            sink(statement, rows)  # part is written
            raise Crash("power cut")  # ... then the process dies
        original(self, sink, execute)

    monkeypatch.setattr(projector_module.Projector, "flush", flaky)


def test_a_crash_while_projecting_loses_and_doubles_nothing(open_ledger: Callable[..., IdentityLedger],
                                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = str(tmp_path / "shared.key")  # one secret: the two logs' stored keys compare equal
    clean = open_ledger(key_file=secret)
    feed(clean, scenario())
    crashed_clock = Clock()
    crashed = open_ledger(key_file=secret, clock=crashed_clock)
    requests = scenario()
    before = feed(crashed, requests[:3])[-1]
    crash_on_flush(monkeypatch, after=1)
    with pytest.raises(Crash):
        crashed.ingest(requests[3])
    monkeypatch.undo()
    # A request is projected in its own transaction: the fourth one was not stored at all.
    assert crashed.diagnostics().read_position == crashed.position == before
    assert crashed.resolve(user_id="user-Mary") is None
    crashed_clock.now -= 1  # the lost request's receipt time, again
    feed(crashed, requests[3:])
    assert unplaced(answers(crashed)) == unplaced(answers(clean))
    if crashed.url.startswith("sqlite"):  # PostgreSQL's sequence skips the positions of a rollback
        assert snapshot(crashed) == snapshot(clean)


def unplaced(found: dict[str, Any]) -> dict[str, Any]:
    """Answers without log positions (which differ after a rolled-back transaction on PostgreSQL)."""
    timelines = {key: [msgspec.structs.replace(e, position=0) for e in events]
                 for key, events in found["timelines"].items()}
    return {**found, "timelines": timelines}


SECONDARY_INDEXES = {"ix_ledger_audit_amplitude_id", "ix_ledger_audit_device_id", "ledger_audit_user_id",
                     "ix_ledger_merges_merged_amplitude_id", "ix_ledger_reattributed_amplitude_id"}


def secondary_indexes(lg: IdentityLedger) -> set[str]:
    with connected(lg.url) as connection:
        inspector = sa.inspect(connection)
        return {str(index["name"]) for table in ("ledger_audit", "ledger_merges", "ledger_reattributed")
                for index in inspector.get_indexes(table)}


def test_a_crash_during_rebuild_resumes_where_it_stopped(open_ledger: Callable[..., IdentityLedger],
                                                         new_url: Callable[[], str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    url = new_url()
    lg = open_ledger(url)
    feed(lg, scenario())
    expected = snapshot(lg)
    lg._context.runner.page_size = 7
    crash_on_flush(monkeypatch, after=3)
    with pytest.raises(Crash):
        lg.rebuild()
    monkeypatch.undo()
    stopped = lg.diagnostics()
    assert 0 < stopped.read_position < stopped.position
    assert lg.lag() == stopped.lag > 0  # looking at the lag catches nothing up
    assert lg.position == stopped.position and lg.lag() == stopped.lag  # nor does reading: reads never write
    assert lg.catch_up() == stopped.position  # the repair, from the tracked position
    assert lg.lag() == 0
    assert snapshot(lg) == expected
    # The replay runs without the secondary indexes; the next open makes them again.
    assert secondary_indexes(lg) == set()
    lg.close()
    assert secondary_indexes(open_ledger(url)) == SECONDARY_INDEXES


def test_rebuild_reports_progress(lg: IdentityLedger) -> None:
    feed(lg, scenario())
    lg._context.runner.page_size = 10
    seen: list[Progress] = []
    indexed: list[bool] = []

    def report(progress: Progress) -> None:
        seen.append(progress)
        indexed.append(secondary_indexes(lg) == SECONDARY_INDEXES)

    assert lg.rebuild(progress=report) == lg.position
    assert indexed[-1] and not any(indexed[:-1])  # done only once the indexes are made again
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[-1].done == seen[-1].total == lg.position and seen[-1].eta == 0
    assert all(p.rate > 0 for p in seen)
    assert secondary_indexes(lg) == SECONDARY_INDEXES  # dropped for the replay, made again from its rows


def test_the_latest_events_come_newest_first_with_the_person_s_count(lg: IdentityLedger) -> None:
    feed(lg, scenario())
    david = lg.resolve(user_id="user-David")
    assert david is not None
    everything = lg.timeline(david.amplitude_id)
    assert lg.timeline(david.amplitude_id, limit=2, newest_first=True) == everything[::-1][:2]
    for amplitude_id in [david.amplitude_id, *david.merged_amplitude_ids]:
        assert lg.event_count(amplitude_id) == len(everything) == 4
    assert lg.event_count(10**6) == 0
