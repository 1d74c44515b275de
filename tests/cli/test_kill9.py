"""A small run of the kill -9 harness (`python -m benchmarks.kill9 --trials N` runs as many as you like)."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.kill9 import run


def test_kill_9_loses_no_acknowledged_request_and_stores_none_in_part(new_url: Callable[[], str]) -> None:
    outcome = run(new_url(), trials=2, seed=7)
    assert outcome.acknowledged  # the server did answer before it was killed
    assert outcome.lost == [] and outcome.partial == []
