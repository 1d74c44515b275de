"""Under SDK-shaped load every acknowledged request is stored exactly once.

Sixteen keep-alive clients post 10-event batches at once, so requests share group commits.
Every fifth commit is refused before anything is stored (503, as when other writers keep
winning), and each client loses one acknowledgement on the way back (it never reads that 200):
like an SDK, a client sends the same batch again until it reads a 200. The faults follow a fixed
schedule, so every run meets them. At the end each event is in
the ledger once, and every batch's first 200 counted exactly the events it stored.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx

from ledger import IdentityLedger
from ledger.errors import ConflictRetriesExhausted
from ledger.server.app import create_app
from tests.server_helpers import API_KEY, SECRET_KEY, running_app

CLIENTS = 16
BATCHES = 6
EVENTS = 10


def batch(client: int, number: int) -> list[dict[str, Any]]:
    """One SDK flush: a device's events, the first of its first batch with a user ID (a binding)."""
    return [{"event_type": "view", "device_id": f"device-{client}", "insert_id": f"{client}-{number}-{index}",
             **({"user_id": f"user-{client}"} if number == index == 0 else {})} for index in range(EVENTS)]


def test_every_acknowledged_request_is_stored_exactly_once(lg: IdentityLedger) -> None:
    refusals = Counter[str]()
    commit = lg._context.commit

    def flaky_commit(*args: Any, **kwargs: Any) -> None:  # refused before anything is stored
        refusals["commits tried"] += 1
        if refusals["commits tried"] % 5 == 2:
            raise ConflictRetriesExhausted("injected: other writers kept winning")
        commit(*args, **kwargs)

    lg._context.commit = flaky_commit  # type: ignore[method-assign]
    ingested: dict[tuple[int, int], int] = {}
    resent: set[tuple[int, int]] = set()
    failures: list[BaseException] = []

    def client(number: int, base_url: str) -> None:
        losing = number % BATCHES  # the batch whose first 200 this client never reads
        try:
            with httpx.Client(base_url=base_url, timeout=30) as http:
                for sequence in range(BATCHES):
                    body = {"api_key": API_KEY, "events": batch(number, sequence)}
                    while True:
                        reply = http.post("/2/httpapi", json=body)
                        if reply.status_code == 503:
                            refusals["answered 503"] += 1
                            continue
                        assert reply.status_code == 200, reply.text
                        if sequence == losing and (number, sequence) not in resent:  # lost: the SDK sends again
                            resent.add((number, sequence))
                            continue
                        ingested[number, sequence] = reply.json()["events_ingested"]
                        break
        except BaseException as error:
            failures.append(error)

    with running_app(create_app(lg, [API_KEY], SECRET_KEY)) as base_url:
        threads = [threading.Thread(target=client, args=(number, base_url)) for number in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures
    assert refusals["answered 503"] > 0 and len(resent) == CLIENTS  # the faults did happen
    stored = Counter(record["insert_id"] for record in lg.export() if record.get("event_type") == "view")
    sent = {event["insert_id"] for client in range(CLIENTS) for number in range(BATCHES)
            for event in batch(client, number)}
    assert set(stored) == sent and set(stored.values()) == {1}
    assert lg.stats().events == CLIENTS * BATCHES * EVENTS
    # A batch whose acknowledgement was lost was stored by that attempt: the 200 read later counts none.
    assert ingested == {key: 0 if key in resent else EVENTS for key in ingested}
    assert len(ingested) == CLIENTS * BATCHES
    for number in range(CLIENTS):
        person = lg.resolve(device_id=f"device-{number}")
        assert person is not None and person == lg.resolve(user_id=f"user-{number}")
