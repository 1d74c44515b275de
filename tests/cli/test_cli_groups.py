"""`ledger group`, `ledger map`, `ledger unmap` (docs/cli.md), on every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from tests.cli_helpers import assert_one_line_error, ledger


def test_group_map_and_unmap_from_the_command_line(capsys: pytest.CaptureFixture[str], new_url: Callable[[], str],
                                                   tmp_path: Path) -> None:
    url = new_url()
    lines = [{"event_type": "open", "device_id": "dev-ann", "user_id": "user-ann", "groups": {"org": "acme"}},
             {"event_type": "$groupidentify", "device_id": "dev-ann", "groups": {"org": "acme"},
              "group_properties": {"$set": {"plan": "pro"}}},
             {"event_type": "open", "device_id": "dev-bob", "user_id": "user-bob"}]
    path = tmp_path / "calls.jsonl"
    path.write_bytes(b"\n".join(msgspec.json.encode(line) for line in lines))
    assert ledger(capsys, "ingest", "--db", url, str(path)).code == 0
    found = ledger(capsys, "group", "--db", url, "org", "acme", "--json").json()
    assert found["properties"] == {"plan": "pro"} and len(found["amplitude_ids"]) == 1
    assert "plan" in ledger(capsys, "group", "--db", url, "org", "acme").out
    assert_one_line_error(ledger(capsys, "group", "--db", url, "org", "initech"), 1, "initech")
    assert ledger(capsys, "map", "--db", url, "user-ann", "user-bob", "--requester", "ops").code == 0
    bob = ledger(capsys, "resolve", "--db", url, "--user-id", "user-bob", "--json").json()
    assert bob["mapped_user_ids"] == ["user-ann"]
    assert "mapped here" in ledger(capsys, "resolve", "--db", url, "--user-id", "user-bob").out
    ann = ledger(capsys, "resolve", "--db", url, "--user-id", "user-ann").out
    assert "mapped onto" in ann and "user-bob" in ann and "org: acme" in ann
    assert_one_line_error(ledger(capsys, "map", "--db", url, "user-bob", "user-cy"), 2, "global user ID")
    assert ledger(capsys, "unmap", "--db", url, "user-ann", "--json").json()["unmapped"] == 1
    history = ledger(capsys, "mappings", "--db", url, "--user-id", "user-bob", "--json").json()
    assert [(m["unmap"], m["requester"]) for m in history] == [(False, "ops"), (True, history[1]["requester"])]
    assert "user-ann mapped onto user-bob  by ops" in ledger(capsys, "mappings", "--db", url).out
    assert "mapped_user_ids" not in ledger(capsys, "resolve", "--db", url, "--user-id", "user-bob", "--json").json()
