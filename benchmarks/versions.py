"""This checkout against an earlier one (by default the code before the lean event path), same run.

Each contender runs in its own process (`benchmarks/contender.py` with PYTHONPATH set to
the checkout) on the same events; repeats interleave the two versions. Measured: requests
of 10 and 100 from 4 client threads sharing one ledger, and, on a log where few calls change
identity ("steady" mix), ingest at 1000/request, rebuild, and whole-person timeline reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.databases import Databases

HERE = Path(__file__).resolve().parent
THREADS = 4


@dataclass(frozen=True)
class VersionPlan:
    small_events: int
    steady_events: int
    timeline_samples: int
    repeats: int


def run_contender(checkout: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(HERE / "contender.py"), *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(checkout)}, cwd=HERE)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr, flush=True)
        raise RuntimeError(f"{checkout}: {args[0]} failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:300]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_versions(databases: Databases, checkouts: dict[str, Path], plan: VersionPlan) -> dict[str, Any]:
    """{measurement: {version: [runs...]}}, plus medians and the ratio of the first version to the second."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def keep(what: str, version: str, result: dict[str, Any]) -> None:
        runs.setdefault(what, {}).setdefault(version, []).append(result)

    for repeat in range(1, plan.repeats + 1):
        for version, checkout in checkouts.items():
            def step(name: str, repeat: int = repeat, version: str = version) -> None:
                print(f"  {databases.name} versions {repeat}/{plan.repeats}: {version}: {name}",
                      file=sys.stderr, flush=True)

            for size in (10, 100):
                step(f"ingest {size}/request, {THREADS} threads")
                url = databases.ledger_url(f"v_{version}_{size}_r{repeat}")
                keep(f"ingest_{size}x{THREADS}", version, run_contender(
                    checkout, "ingest", url, str(plan.small_events), str(size), str(THREADS), "default"))
            step("ingest steady mix, 1000/request")
            url = databases.ledger_url(f"v_{version}_steady_r{repeat}")
            keep("steady_ingest_1000", version, run_contender(
                checkout, "ingest", url, str(plan.steady_events), "1000", "1", "steady"))
            step("rebuild of the steady log")
            keep("steady_rebuild", version, run_contender(checkout, "rebuild", url))
            step("timeline reads")
            keep("timeline", version, run_contender(checkout, "timeline", url, str(plan.timeline_samples)))
    return {"versions": list(checkouts), "plan": plan.__dict__, "runs": runs, "summary": summarise(runs, list(checkouts))}


def summarise(runs: dict[str, dict[str, list[dict[str, Any]]]], versions: list[str]) -> dict[str, Any]:
    new, old = versions
    summary: dict[str, Any] = {}
    for what, by_version in runs.items():
        key = "page_p99_us" if what == "timeline" else "rate"
        medians = {version: median(run[key] for run in by_version.get(version, [])) for version in versions
                   if by_version.get(version)}
        entry: dict[str, Any] = {"measure": key, "medians": medians}
        if new in medians and old in medians and medians[old]:
            entry["ratio"] = medians[new] / medians[old]
        if what == "timeline":
            entry["count_p99_us"] = {version: median(run["count_p99_us"] for run in by_version[version])
                                     for version in medians}
        if "log_events" in by_version.get(new, [{}])[0]:
            entry["log_events"] = {version: by_version[version][0].get("log_events") for version in medians}
        summary[what] = entry
    return summary
