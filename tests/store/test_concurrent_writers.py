"""Several writers on one database: bindings stay unique, amplitude IDs never collide, nothing is lost.

Two IdentityLedger objects have separate caches and connections, exactly like two
processes; threads make their requests interleave.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from ledger import IdentityLedger
from tests.domain.test_validation import snapshot

USERS = [f"user-{n}" for n in range(6)]
DEVICES = [f"device-{n}" for n in range(12)]


def requests_for(writer: int, count: int) -> list[list[dict]]:
    chance = random.Random(writer)
    requests = []
    for number in range(count):
        request = []
        for call in range(5):
            event = {"event_type": "view", "device_id": chance.choice(DEVICES),
                     "insert_id": f"w{writer}-{number}-{call}"}
            if chance.random() < 0.4:
                event["user_id"] = chance.choice(USERS)
            request.append(event)
        requests.append(request)
    return requests


def test_two_writers_keep_every_rule(open_ledger: Callable[..., IdentityLedger], new_url: Callable[[], str]) -> None:
    url = new_url()
    writers = [open_ledger(url), open_ledger(url)]
    work = [requests_for(n, 30) for n in range(len(writers))]
    stored = [0, 0]
    failures: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for request in work[index]:
                stored[index] += writer_ingest(writers[index], request)
        except BaseException as error:  # surfaced below
            failures.append(error)

    def writer_ingest(lg: IdentityLedger, request: list[dict]) -> int:
        return lg.ingest(request).ingested

    threads = [threading.Thread(target=write, args=(index,)) for index in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    first, second = writers
    assert sum(stored) == 2 * 30 * 5 == first.stats().events == second.stats().events
    # Both writers see one and the same world.
    for user_id in USERS:
        assert first.resolve(user_id=user_id) == second.resolve(user_id=user_id)
    for device_id in DEVICES:
        assert first.resolve(device_id=device_id) == second.resolve(device_id=device_id)
    people = [first.resolve(user_id=user_id) for user_id in USERS]
    assert len({person.amplitude_id for person in people if person}) == len([p for p in people if p])
    merged = {merge.amplitude_id: merge.merged_amplitude_id for merge in first.merges()}
    bound = {person.amplitude_id for person in people if person}
    assert all(amplitude_id not in bound and live in bound for amplitude_id, live in merged.items())
    # Amplitude IDs are consecutive and unique however the writers raced.
    created = [entry.amplitude_id for device in DEVICES for entry in first.audit(device_id=device)
               if entry.kind == "created"]
    assert sorted(created) == list(range(1, len(created) + 1))
    incremental = snapshot(first)
    second.close()  # a rebuild needs the ledger to itself
    first.rebuild()
    assert snapshot(first) == incremental


def test_concurrent_requests_on_one_ledger_are_each_stored_whole(lg: IdentityLedger) -> None:
    """Requests from several threads may share a transaction (group commit); each keeps its own report."""
    reports: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        for request in range(15):
            events = [{"event_type": "view", "device_id": f"device-{number}-{request % 3}", "insert_id": f"{n % 4}"}
                      for n in range(6)]  # insert_ids 0,1,2,3,0,1: the last two are duplicates
            report = lg.ingest(events)
            with lock:
                reports.append((report.ingested, report.duplicates, report.position))

    threads = [threading.Thread(target=client, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A device's second and third request repeat all its insert_ids: everything is a duplicate.
    assert sorted((ingested, duplicates) for ingested, duplicates, _ in reports) == sorted(
        [(4, 2)] * 12 + [(0, 6)] * 48
    )
    assert lg.stats().events == 4 * 3 * 4
    assert max(position for _, _, position in reports) == lg.position
