"""Writes the golden ledger: a small history that exercises every stored event type.

`tests/golden/v0.1.0.db` was written by this script at release 0.1.0 (commit 28d339a), and
`v0.1.0.answers.json` holds that release's answers about it. The test opens a copy with
today's code and checks today's answers against them, so no ledger written by 0.1.0 is
stranded. Do not rewrite the committed files: write a new golden ledger for a new release.

    python -m tests.golden.write_golden tests/golden/v0.1.0
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec

from ledger import IdentityLedger
from tests.helpers import Clock

#: The five documented cases (device, user ID) in arrival order, then the calls the cases do not cover.
CASES = [("A", None), ("B", None), ("B", None), ("C", None), ("A", None), ("C", None),
         ("G", None), ("G", None), ("G", "John"),
         ("K", "Zack"), ("L", "Zack"),
         ("R", "Jane"), ("R", None), ("R", "Mary"), ("R", None), ("R", None),
         ("Y", "David"), ("Z", None), ("Z", "David"), ("Z", None)]


def history() -> list[tuple[str, list[dict[str, Any]]]]:
    """(kind, request) pairs: ingest or identify, each request a list of calls."""
    requests: list[tuple[str, list[dict[str, Any]]]] = []
    for number, (device, user) in enumerate(CASES):
        call: dict[str, Any] = {"event_type": "view", "device_id": f"device-{device}", "insert_id": f"golden-{number}",
                                "time": 1_600_000_000_000 + number, "event_properties": {"n": number}}
        if user:
            call["user_id"] = f"user-{user}"
        requests.append(("ingest", [call]))
    requests.append(("ingest", [{"event_type": "view", "device_id": "device-A", "insert_id": "golden-0"}]))  # duplicate
    requests.append(("identify", [{"user_id": "user-David", "user_properties": {
        "$set": {"plan": "pro"}, "$add": {"logins": 2}, "$append": {"tags": "a"}, "$setOnce": {"first": "x"}}}]))
    requests.append(("ingest", [{"event_type": "$identify", "user_id": "user-Jane",
                                 "user_properties": {"$set": {"city": "Oslo"}, "$unset": {"gone": "-"}}}]))
    requests.append(("ingest", [{"event_type": "buy", "user_id": "user-David", "device_id": "device-Z",
                                 "user_properties": {"$set": {"plan": "team"}}, "event_properties": {"sku": 7}}]))
    requests.append(("ingest", [{"event_type": "late", "user_id": "user-Only-Hash", "time": 1_500_000_000_000}]))
    return requests


def answers(lg: IdentityLedger) -> dict[str, Any]:
    """Everything the ledger's read API says about the golden history, as plain JSON data."""
    people = {f"user-{u}": lg.resolve(user_id=f"user-{u}") for u in ["John", "Zack", "Jane", "Mary", "David", "Only-Hash"]}
    devices = {f"device-{d}": lg.resolve(device_id=f"device-{d}") for d in "ABCGKLRYZ"}
    found = {**people, **devices}
    return msgspec.to_builtins({
        "position": lg.position,
        "stats": lg.stats(),
        "people": found,
        "timelines": {str(a): lg.timeline(a) for a in range(1, 12)},
        "merges": lg.merges(),
        "audit": {key: (lg.audit(user_id=key) if key.startswith("user-") else lg.audit(device_id=key)) for key in found},
        "events": lg.events(),
    })


def main(stem: str) -> None:
    path = Path(stem + ".db")
    if path.exists():
        raise SystemExit(f"{path} exists: golden ledgers are never rewritten")
    with IdentityLedger(f"sqlite:///{path}", clock=Clock()) as lg:
        for kind, request in history():
            (lg.ingest if kind == "ingest" else lg.identify)(request)
        Path(stem + ".answers.json").write_bytes(msgspec.json.format(msgspec.json.encode(answers(lg)), indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
