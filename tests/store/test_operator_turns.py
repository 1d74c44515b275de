"""Operator actions from a second process finish while another process ingests steadily.

A correction of a large component and `forget --now` take the ledger's write turn (the
database's write lock) for their whole plan, so a writer that keeps storing requests meanwhile
waits instead of invalidating the plan over and over; a job that erases the log's last rows
never hands their positions out again. Two IdentityLedger objects have their own caches and
connections, exactly like two processes; a thread keeps the first one ingesting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest

from ledger import IdentityLedger
from tests.cli_helpers import ledger
from tests.helpers import Clock, event

#: The component a bad user ID glued together: this many devices, each with `CALLS_PER_DEVICE` calls.
DEVICES = 200
CALLS_PER_DEVICE = 10
#: Devices the steady ingest uses: made before the operator acts, so it allocates no amplitude ID.
BACKGROUND = [f"background-device-{n}" for n in range(20)]


def glued_component(lg: IdentityLedger) -> None:
    """2,000 calls on 200 devices, each device identified once with the same bad user ID."""
    calls = []
    for device in range(DEVICES):
        calls.append(event(f"glued-device-{device}", "bad-user", "sign in"))
        calls.extend(event(f"glued-device-{device}", None, f"step {n}") for n in range(CALLS_PER_DEVICE - 1))
    lg.ingest(calls)
    lg.ingest([event(device_id) for device_id in BACKGROUND])


class SteadyIngest:
    """Another process storing small requests one after another; remembers what it was told.

    Each request is two calls on background devices, then one on the device `last[0]` names, if
    any (the test may change it while the ingest runs).
    """

    def __init__(self, lg: IdentityLedger, last: list[str] | None = None) -> None:
        self._lg = lg
        self._last = last
        self._stop = threading.Event()
        self.acknowledged: list[str] = []
        self.failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            request = [event(BACKGROUND[(number + n) % len(BACKGROUND)], insert_id=f"steady-{number}-{n}")
                       for n in range(2)]
            if self._last:
                request.append(event(self._last[0], insert_id=f"last-{number}"))
            try:
                report = self._lg.ingest(request)
            except BaseException as error:  # surfaced by the test
                self.failures.append(error)
                return
            if report.ingested == len(request):
                self.acknowledged.extend(call["insert_id"] for call in request)

    def __enter__(self) -> SteadyIngest:
        self._thread.start()
        while not self.acknowledged and not self.failures:
            self._stop.wait(0.01)  # the operator acts once ingest is under way
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def two_processes(open_ledger: Callable[..., IdentityLedger],
                  new_url: Callable[[], str]) -> Iterator[tuple[IdentityLedger, IdentityLedger]]:
    url = new_url()
    server = open_ledger(url)
    glued_component(server)
    yield server, open_ledger(url)


def stored_exactly_once(lg: IdentityLedger, acknowledged: list[str]) -> None:
    stored = [entry.insert_id for entry in lg.events(limit=1_000_000) if entry.insert_id.startswith("steady-")]
    assert sorted(stored) == sorted(set(stored))
    assert {insert_id for insert_id in acknowledged if insert_id.startswith("steady-")} <= set(stored)


def plain(answer: Any) -> dict[str, Any]:
    """A correction's answer without what depends on when it ran."""
    fields: dict[str, Any] = msgspec.to_builtins(answer)
    return {name: value for name, value in fields.items() if name not in ("position", "server_time")}


def test_a_large_correction_from_a_second_process_finishes_under_steady_ingest(
        two_processes: tuple[IdentityLedger, IdentityLedger], open_ledger: Callable[..., IdentityLedger]) -> None:
    server, operator = two_processes
    with SteadyIngest(server) as ingest:
        answer = operator.retract_user_id("bad-user", reason="a shared test account", requester="ops")
    assert not ingest.failures
    stored_exactly_once(operator, ingest.acknowledged)
    quiet = open_ledger()
    glued_component(quiet)
    assert plain(answer) == plain(quiet.retract_user_id("bad-user", reason="a shared test account", requester="ops"))
    assert answer.changes.people_after == DEVICES
    for device in range(DEVICES):
        assert server.resolve(device_id=f"glued-device-{device}") == quiet.resolve(device_id=f"glued-device-{device}")


def test_forgetting_now_from_a_second_process_finishes_under_steady_ingest(
        two_processes: tuple[IdentityLedger, IdentityLedger], open_ledger: Callable[..., IdentityLedger]) -> None:
    server, operator = two_processes
    victims = [f"victim-{n}" for n in range(8)]
    devices = [f"{user_id}-device" for user_id in victims]
    server.identify([{"user_id": user_id, "device_id": device_id} for user_id, device_id in zip(victims, devices, strict=True)])
    # The victim keeps sending: the end of the log is theirs when their job erases it.
    sending = [devices[0]]
    with SteadyIngest(server, sending) as ingest:
        for user_id, device_id in zip(victims, devices, strict=True):  # several runs: a race lost now and then shows up
            sending[0] = device_id
            job = operator.forget(user_ids=[user_id], requester="ops", now=True)
            assert job["status"] == "done" and len(job["amplitude_ids"]) == 1
    assert not ingest.failures
    stored_exactly_once(operator, ingest.acknowledged)
    for user_id in victims:
        assert server.resolve(user_id=user_id) is None
    # No position was handed out twice: both processes see the same events.
    assert server.stats() == operator.stats()


def test_a_job_that_erases_the_end_of_the_log_runs_and_positions_never_go_back(
        open_ledger: Callable[..., IdentityLedger]) -> None:
    """The person's calls are the last rows when their job runs (as when another process stored them
    between `forget --now` adding them and running the job): erasing them must not hand their
    positions out again."""
    clock = Clock()
    lg = open_ledger(clock=clock)
    lg.identify([{"user_id": "victim", "device_id": "victim-device"}])
    lg.forget(user_ids=["victim"], requester="ops")
    lg.ingest([event("victim-device") for _ in range(4)])
    before = lg.position
    clock.now += 2 * 86_400_000  # the job's day has come
    [run] = lg.run_deletions()
    assert run.amplitude_ids == [1]
    assert lg.position > before
    lg.ingest([event("someone-else")])
    assert lg.position > before + 1
    assert lg.is_forgotten(1) and lg.resolve(device_id="someone-else") is not None


def test_the_operator_commands_finish_beside_a_running_server(
        open_ledger: Callable[..., IdentityLedger], new_url: Callable[[], str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """`ledger retract` and `ledger forget --now` exit 0 while another process (the server) keeps ingesting."""
    url = new_url()
    server = open_ledger(url)
    glued_component(server)
    server.identify([{"user_id": f"victim-{n}", "device_id": f"victim-{n}-device"} for n in range(3)])
    sending = ["victim-0-device"]
    with SteadyIngest(server, sending) as ingest:
        retracted = ledger(capsys, "retract", "--db", url, "--user-id", "bad-user", "--reason", "shared account")
        assert retracted.code == 0, retracted.err
        for number in range(3):
            sending[0] = f"victim-{number}-device"
            forgotten = ledger(capsys, "forget", "--db", url, "--user-id", f"victim-{number}", "--requester", "dpo",
                               "--now")
            assert forgotten.code == 0, forgotten.err
    assert not ingest.failures
    stored_exactly_once(server, ingest.acknowledged)
    assert server.resolve(device_id="glued-device-0") != server.resolve(device_id="glued-device-1")
